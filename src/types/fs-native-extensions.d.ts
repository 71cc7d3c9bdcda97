declare module 'fs-native-extensions' {
  interface LockOptions { shared?: boolean }
  const fsx: {
    tryLock(fd: number, offset: number, length: number, opts?: LockOptions): boolean;
    waitForLock(fd: number, offset: number, length: number, opts?: LockOptions): Promise<void>;
    unlock(fd: number, offset: number, length: number): void;
  };
  export default fsx;
}
