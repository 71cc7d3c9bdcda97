// The two member backends every CLI behaviour is proven on: image files, and loop devices
// (when root). A backend makes N pre-sized members in a workspace and cleans them up.

import { makeImages, type Workspace } from './cli.js';
import { loopSuiteEnabled, makeLoopDevices } from './loop.js';

export interface Backend {
  name: string;
  enabled: boolean;
  /** Members that exist with the given size. */
  members(ws: Workspace, count: number, sizeBytes: number, prefix?: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

export function backends(): Backend[] {
  const detachers: (() => Promise<void>)[] = [];
  return [
    {
      name: 'image files',
      enabled: true,
      members: (ws, count, sizeBytes, prefix = 'm') => makeImages(ws, Array.from({ length: count }, (_, i) => `${prefix}${i}.img`), sizeBytes),
      cleanup: async () => {},
    },
    {
      name: 'loop devices',
      enabled: loopSuiteEnabled(),
      members: async (ws, count, sizeBytes, prefix = 'm') => {
        const loops = await makeLoopDevices(ws.path(`${prefix}-backing`), count, sizeBytes);
        detachers.push(loops.detach);
        return loops.devices;
      },
      cleanup: async () => {
        for (const detach of detachers.splice(0)) await detach();
      },
    },
  ];
}
