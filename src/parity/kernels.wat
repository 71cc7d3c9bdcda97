;; jraid's parity kernels in WebAssembly SIMD. Built to kernels.wasm by scripts/build-wasm.mjs
;; (wabt, from the npm registry) and driven by src/parity/wasm-kernels.ts.
;;
;; GF(2^8) is md's field: polynomial 0x11d, generator 2. Every kernel is byte-wise, so a range
;; can be cut anywhere and computed piece by piece.
;;
;; Shape. The exported drivers walk the operands in blocks of BLOCK_BYTES (16 KiB) and, within a
;; block, the sources in groups of four, calling one fixed-arity row kernel per group. A row
;; kernel holds its operand addresses in locals and handles 64 bytes (four v128 lanes) per
;; iteration; the partial sums of a block wait in the work area between groups, in L1. (A loop
;; over a source table inside the row loop ran at two thirds of this speed: V8 pays for the
;; table loads and the inner loop's branches on every row. Blocks of 4, 8, 16 and 32 KiB
;; measured within 10% of each other; 16 KiB keeps both partial sums in L1.)
;;
;; Conventions:
;; - Addresses are byte offsets into the imported memory, the arena of src/memory/arena.ts. The
;;   memory is never grown: nothing here uses memory.grow.
;; - `len` is a multiple of 64; the host pads a shorter tail through its scratch area.
;; - `tbl` points at `n` little-endian i32 addresses of source chunks. For the Horner drivers
;;   entry i is the chunk whose Q coefficient is g^i. Address 0 stands for a chunk of zeros (a
;;   lost chunk, or an exponent no chunk has); the arena never lends address 0.
;; - `work` is the host's work area of 3 * BLOCK_BYTES: zeros (never written; the stand-in for
;;   address 0 and for the padding of a group of fewer than four), then P and Q partial sums.
;; - Outputs may be a source itself (the same address), never a partial overlap (the host
;;   copies such an input first): every lane is read before it is stored, and a block of an
;;   output is stored only by the block's last group, after every source of that block was read.
;; - Multiplication by a constant c uses two 16-byte tables: lo[x] = c*x and hi[x] = c*(x << 4)
;;   for x < 16, so c*v = lo[v & 15] ^ hi[v >> 4], sixteen bytes at a time by i8x16.swizzle.
;; - Multiplication by 2 is (v + v) ^ ((v <s 0) & 0x1d) with i8x16.lt_s; i8x16.shr_s has no
;;   single x64 instruction in V8 and runs five times slower (PERF-NOTES).
(module
  (import "env" "memory" (memory 1))

  (global $BLOCK_BYTES i32 (i32.const 16384))

  ;; The address of source i at byte `at` of the block walk: the zeros when i >= n or the
  ;; entry is 0 (the zeros are one block long, and every kernel call covers at most a block).
  (func $entry (param $tbl i32) (param $n i32) (param $i i32) (param $zero i32) (param $at i32) (result i32)
    (local $address i32)
    (if (i32.ge_u (local.get $i) (local.get $n)) (then (return (local.get $zero))))
    (local.set $address (i32.load (i32.add (local.get $tbl) (i32.shl (local.get $i) (i32.const 2)))))
    (if (result i32) (local.get $address)
      (then (i32.add (local.get $address) (local.get $at)))
      (else (local.get $zero))))

  ;; True when the table has exactly four entries and none is 0: the zeros (one block long)
  ;; are then never needed, and a single row-kernel call can cover the whole length.
  (func $four_present (param $tbl i32) (param $n i32) (result i32)
    (if (i32.ne (local.get $n) (i32.const 4)) (then (return (i32.const 0))))
    (i32.and
      (i32.and (i32.ne (i32.load offset=0 (local.get $tbl)) (i32.const 0)) (i32.ne (i32.load offset=4 (local.get $tbl)) (i32.const 0)))
      (i32.and (i32.ne (i32.load offset=8 (local.get $tbl)) (i32.const 0)) (i32.ne (i32.load offset=12 (local.get $tbl)) (i32.const 0)))))

  (func $block_bytes (param $at i32) (param $len i32) (result i32)
    (select (global.get $BLOCK_BYTES) (i32.sub (local.get $len) (local.get $at))
      (i32.gt_u (i32.sub (local.get $len) (local.get $at)) (global.get $BLOCK_BYTES))))

  ;; dst = src[0] ^ src[1] ^ ... ^ src[n-1]; n >= 1.
  (func (export "xor_gen") (param $tbl i32) (param $n i32) (param $dst i32) (param $len i32) (param $work i32)
    (local $at i32) (local $blk i32) (local $i i32) (local $acc i32) (local $out i32)
    ;; Exactly four sources, none of them zeros: one group, no block walk.
    (if (call $four_present (local.get $tbl) (local.get $n))
      (then
        (call $xor4 (local.get $dst)
          (i32.load offset=0 (local.get $tbl)) (i32.load offset=4 (local.get $tbl))
          (i32.load offset=8 (local.get $tbl)) (i32.load offset=12 (local.get $tbl))
          (local.get $len))
        (return)))
    (local.set $acc (i32.add (local.get $work) (global.get $BLOCK_BYTES)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $len)))
        (local.set $blk (call $block_bytes (local.get $at) (local.get $len)))
        (local.set $i (i32.const 0))
        (loop $groups
          ;; The last group writes the output; earlier ones the partial sum.
          (local.set $out (select (i32.add (local.get $dst) (local.get $at)) (local.get $acc)
            (i32.ge_u (i32.add (local.get $i) (i32.const 4)) (local.get $n))))
          (if (i32.eqz (local.get $i))
            (then
              (call $xor4 (local.get $out)
                (call $entry (local.get $tbl) (local.get $n) (local.get $i) (local.get $work) (local.get $at))
                (call $entry (local.get $tbl) (local.get $n) (i32.add (local.get $i) (i32.const 1)) (local.get $work) (local.get $at))
                (call $entry (local.get $tbl) (local.get $n) (i32.add (local.get $i) (i32.const 2)) (local.get $work) (local.get $at))
                (call $entry (local.get $tbl) (local.get $n) (i32.add (local.get $i) (i32.const 3)) (local.get $work) (local.get $at))
                (local.get $blk)))
            (else
              (call $xor4_acc (local.get $out) (local.get $acc)
                (call $entry (local.get $tbl) (local.get $n) (local.get $i) (local.get $work) (local.get $at))
                (call $entry (local.get $tbl) (local.get $n) (i32.add (local.get $i) (i32.const 1)) (local.get $work) (local.get $at))
                (call $entry (local.get $tbl) (local.get $n) (i32.add (local.get $i) (i32.const 2)) (local.get $work) (local.get $at))
                (call $entry (local.get $tbl) (local.get $n) (i32.add (local.get $i) (i32.const 3)) (local.get $work) (local.get $at))
                (local.get $blk))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $groups (i32.lt_u (local.get $i) (local.get $n))))
        (local.set $at (i32.add (local.get $at) (local.get $blk)))
        (br $blocks))))

  ;; One block of Horner's rule over the source table, from the highest exponent down in
  ;; groups of four (the first group padded with zeros above entry n-1, which leaves Q as it
  ;; is): sum of src[i] to outp and sum of g^i * src[i] to outq, which the last group writes;
  ;; earlier groups leave their partial sums in the work area.
  (func $horner_block (param $tbl i32) (param $n i32) (param $at i32) (param $blk i32) (param $work i32) (param $outp i32) (param $outq i32)
    (local $top i32) (local $i i32) (local $accp i32) (local $accq i32) (local $last i32)
    (local.set $accp (i32.add (local.get $work) (global.get $BLOCK_BYTES)))
    (local.set $accq (i32.add (local.get $accp) (global.get $BLOCK_BYTES)))
    ;; The highest entry of the first group: n rounded up to a multiple of 4, less one.
    (local.set $top (i32.sub (i32.and (i32.add (local.get $n) (i32.const 3)) (i32.const -4)) (i32.const 1)))
    (local.set $i (local.get $top))
    (loop $groups
      (local.set $last (i32.eq (local.get $i) (i32.const 3)))
      (if (i32.eq (local.get $i) (local.get $top))
        (then
          (call $pq4
            (select (local.get $outp) (local.get $accp) (local.get $last))
            (select (local.get $outq) (local.get $accq) (local.get $last))
            (call $entry (local.get $tbl) (local.get $n) (local.get $i) (local.get $work) (local.get $at))
            (call $entry (local.get $tbl) (local.get $n) (i32.sub (local.get $i) (i32.const 1)) (local.get $work) (local.get $at))
            (call $entry (local.get $tbl) (local.get $n) (i32.sub (local.get $i) (i32.const 2)) (local.get $work) (local.get $at))
            (call $entry (local.get $tbl) (local.get $n) (i32.sub (local.get $i) (i32.const 3)) (local.get $work) (local.get $at))
            (local.get $blk)))
        (else
          (call $pq4_acc
            (select (local.get $outp) (local.get $accp) (local.get $last))
            (select (local.get $outq) (local.get $accq) (local.get $last))
            (local.get $accp) (local.get $accq)
            (call $entry (local.get $tbl) (local.get $n) (local.get $i) (local.get $work) (local.get $at))
            (call $entry (local.get $tbl) (local.get $n) (i32.sub (local.get $i) (i32.const 1)) (local.get $work) (local.get $at))
            (call $entry (local.get $tbl) (local.get $n) (i32.sub (local.get $i) (i32.const 2)) (local.get $work) (local.get $at))
            (call $entry (local.get $tbl) (local.get $n) (i32.sub (local.get $i) (i32.const 3)) (local.get $work) (local.get $at))
            (local.get $blk))))
      (local.set $i (i32.sub (local.get $i) (i32.const 4)))
      (br_if $groups (i32.gt_s (local.get $i) (i32.const 0)))))

  ;; p = sum of src[i], q = sum of g^i * src[i]; n >= 1. With p = 0, Q alone (P's sums are
  ;; left in the work area).
  (func (export "pq_gen") (param $tbl i32) (param $n i32) (param $p i32) (param $q i32) (param $len i32) (param $work i32)
    (local $at i32) (local $blk i32)
    ;; Exactly four chunks, none of them zeros, and P wanted: one group, no block walk.
    (if (i32.and (call $four_present (local.get $tbl) (local.get $n)) (i32.ne (local.get $p) (i32.const 0)))
      (then
        (call $pq4 (local.get $p) (local.get $q)
          (i32.load offset=12 (local.get $tbl)) (i32.load offset=8 (local.get $tbl))
          (i32.load offset=4 (local.get $tbl)) (i32.load offset=0 (local.get $tbl))
          (local.get $len))
        (return)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $len)))
        (local.set $blk (call $block_bytes (local.get $at) (local.get $len)))
        (call $horner_block (local.get $tbl) (local.get $n) (local.get $at) (local.get $blk) (local.get $work)
          (if (result i32) (local.get $p)
            (then (i32.add (local.get $p) (local.get $at)))
            (else (i32.add (local.get $work) (global.get $BLOCK_BYTES))))
          (i32.add (local.get $q) (local.get $at)))
        (local.set $at (i32.add (local.get $at) (local.get $blk)))
        (br $blocks))))

  ;; One lost data chunk when P is lost too: dx = c * (q ^ sum of g^i * src[i]), with the lost
  ;; chunk's entry 0 and c = g^-x (tables at tabs); n >= 1.
  (func (export "recov_q") (param $tbl i32) (param $n i32) (param $q i32) (param $dx i32) (param $len i32) (param $tabs i32) (param $work i32)
    (local $at i32) (local $blk i32) (local $accp i32) (local $accq i32)
    (local.set $accp (i32.add (local.get $work) (global.get $BLOCK_BYTES)))
    (local.set $accq (i32.add (local.get $accp) (global.get $BLOCK_BYTES)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $len)))
        (local.set $blk (call $block_bytes (local.get $at) (local.get $len)))
        (call $horner_block (local.get $tbl) (local.get $n) (local.get $at) (local.get $blk) (local.get $work)
          (local.get $accp) (local.get $accq))
        (call $finish_q (i32.add (local.get $dx) (local.get $at)) (local.get $accq) (i32.add (local.get $q) (local.get $at))
          (local.get $tabs) (local.get $blk))
        (local.set $at (i32.add (local.get $at) (local.get $blk)))
        (br $blocks))))

  ;; Two lost data chunks x and y (entries 0): with Pxy = p ^ sum of src[i] and
  ;; Qxy = q ^ sum of g^i * src[i], dx = a * Qxy ^ b * Pxy and dy = Pxy ^ dx, where
  ;; a = 1 / (g^x ^ g^y) and b = g^y * a (tables at ta and tb); n >= 1.
  (func (export "recov_pq") (param $tbl i32) (param $n i32) (param $p i32) (param $q i32) (param $dx i32) (param $dy i32) (param $len i32) (param $ta i32) (param $tb i32) (param $work i32)
    (local $at i32) (local $blk i32) (local $accp i32) (local $accq i32)
    (local.set $accp (i32.add (local.get $work) (global.get $BLOCK_BYTES)))
    (local.set $accq (i32.add (local.get $accp) (global.get $BLOCK_BYTES)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $len)))
        (local.set $blk (call $block_bytes (local.get $at) (local.get $len)))
        (call $horner_block (local.get $tbl) (local.get $n) (local.get $at) (local.get $blk) (local.get $work)
          (local.get $accp) (local.get $accq))
        (call $finish_pair (i32.add (local.get $dx) (local.get $at)) (i32.add (local.get $dy) (local.get $at))
          (local.get $accp) (local.get $accq) (i32.add (local.get $p) (local.get $at)) (i32.add (local.get $q) (local.get $at))
          (local.get $ta) (local.get $tb) (local.get $blk))
        (local.set $at (i32.add (local.get $at) (local.get $blk)))
        (br $blocks))))

  ;; The row kernels: fixed arity, 64 bytes per iteration, len > 0 a multiple of 64.

  ;; out = s0 ^ s1 ^ s2 ^ s3
  (func $xor4 (param $out i32) (param $s0 i32) (param $s1 i32) (param $s2 i32) (param $s3 i32) (param $len i32)
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (v128.store offset=0 (local.get $out)
          (v128.xor (v128.xor (v128.load offset=0 (local.get $s0)) (v128.load offset=0 (local.get $s1))) (v128.xor (v128.load offset=0 (local.get $s2)) (v128.load offset=0 (local.get $s3)))))
        (v128.store offset=16 (local.get $out)
          (v128.xor (v128.xor (v128.load offset=16 (local.get $s0)) (v128.load offset=16 (local.get $s1))) (v128.xor (v128.load offset=16 (local.get $s2)) (v128.load offset=16 (local.get $s3)))))
        (v128.store offset=32 (local.get $out)
          (v128.xor (v128.xor (v128.load offset=32 (local.get $s0)) (v128.load offset=32 (local.get $s1))) (v128.xor (v128.load offset=32 (local.get $s2)) (v128.load offset=32 (local.get $s3)))))
        (v128.store offset=48 (local.get $out)
          (v128.xor (v128.xor (v128.load offset=48 (local.get $s0)) (v128.load offset=48 (local.get $s1))) (v128.xor (v128.load offset=48 (local.get $s2)) (v128.load offset=48 (local.get $s3)))))
        (local.set $out (i32.add (local.get $out) (i32.const 64)))
        (local.set $s0 (i32.add (local.get $s0) (i32.const 64)))
        (local.set $s1 (i32.add (local.get $s1) (i32.const 64)))
        (local.set $s2 (i32.add (local.get $s2) (i32.const 64)))
        (local.set $s3 (i32.add (local.get $s3) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0))))))

  ;; out = acc ^ s0 ^ s1 ^ s2 ^ s3
  (func $xor4_acc (param $out i32) (param $acc i32) (param $s0 i32) (param $s1 i32) (param $s2 i32) (param $s3 i32) (param $len i32)
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (v128.store offset=0 (local.get $out)
          (v128.xor (v128.load offset=0 (local.get $acc))
          (v128.xor (v128.xor (v128.load offset=0 (local.get $s0)) (v128.load offset=0 (local.get $s1))) (v128.xor (v128.load offset=0 (local.get $s2)) (v128.load offset=0 (local.get $s3))))))
        (v128.store offset=16 (local.get $out)
          (v128.xor (v128.load offset=16 (local.get $acc))
          (v128.xor (v128.xor (v128.load offset=16 (local.get $s0)) (v128.load offset=16 (local.get $s1))) (v128.xor (v128.load offset=16 (local.get $s2)) (v128.load offset=16 (local.get $s3))))))
        (v128.store offset=32 (local.get $out)
          (v128.xor (v128.load offset=32 (local.get $acc))
          (v128.xor (v128.xor (v128.load offset=32 (local.get $s0)) (v128.load offset=32 (local.get $s1))) (v128.xor (v128.load offset=32 (local.get $s2)) (v128.load offset=32 (local.get $s3))))))
        (v128.store offset=48 (local.get $out)
          (v128.xor (v128.load offset=48 (local.get $acc))
          (v128.xor (v128.xor (v128.load offset=48 (local.get $s0)) (v128.load offset=48 (local.get $s1))) (v128.xor (v128.load offset=48 (local.get $s2)) (v128.load offset=48 (local.get $s3))))))
        (local.set $out (i32.add (local.get $out) (i32.const 64)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 64)))
        (local.set $s0 (i32.add (local.get $s0) (i32.const 64)))
        (local.set $s1 (i32.add (local.get $s1) (i32.const 64)))
        (local.set $s2 (i32.add (local.get $s2) (i32.const 64)))
        (local.set $s3 (i32.add (local.get $s3) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0))))))

  ;; The first Horner step: p = s0 ^ s1 ^ s2 ^ s3, q = ((s0 * 2 ^ s1) * 2 ^ s2) * 2 ^ s3
  (func $pq4 (param $outp i32) (param $outq i32) (param $s0 i32) (param $s1 i32) (param $s2 i32) (param $s3 i32) (param $len i32)
    (local $zero v128) (local $poly v128) (local $p v128) (local $q v128) (local $v v128)
    (local.set $poly (i8x16.splat (i32.const 0x1d)))
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (local.set $p (v128.load offset=0 (local.get $s0)))
        (local.set $q (local.get $p))
        (local.set $v (v128.load offset=0 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=0 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=0 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=0 (local.get $outp) (local.get $p))
        (v128.store offset=0 (local.get $outq) (local.get $q))
        (local.set $p (v128.load offset=16 (local.get $s0)))
        (local.set $q (local.get $p))
        (local.set $v (v128.load offset=16 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=16 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=16 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=16 (local.get $outp) (local.get $p))
        (v128.store offset=16 (local.get $outq) (local.get $q))
        (local.set $p (v128.load offset=32 (local.get $s0)))
        (local.set $q (local.get $p))
        (local.set $v (v128.load offset=32 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=32 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=32 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=32 (local.get $outp) (local.get $p))
        (v128.store offset=32 (local.get $outq) (local.get $q))
        (local.set $p (v128.load offset=48 (local.get $s0)))
        (local.set $q (local.get $p))
        (local.set $v (v128.load offset=48 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=48 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=48 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=48 (local.get $outp) (local.get $p))
        (v128.store offset=48 (local.get $outq) (local.get $q))
        (local.set $outp (i32.add (local.get $outp) (i32.const 64)))
        (local.set $outq (i32.add (local.get $outq) (i32.const 64)))
        (local.set $s0 (i32.add (local.get $s0) (i32.const 64)))
        (local.set $s1 (i32.add (local.get $s1) (i32.const 64)))
        (local.set $s2 (i32.add (local.get $s2) (i32.const 64)))
        (local.set $s3 (i32.add (local.get $s3) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0))))))

  ;; Horner step over four chunks, highest exponent first: p = accp ^ s0 ^ .. ^ s3,
  ;; q = (((accq * 2 ^ s0) * 2 ^ s1) * 2 ^ s2) * 2 ^ s3
  (func $pq4_acc (param $outp i32) (param $outq i32) (param $accp i32) (param $accq i32) (param $s0 i32) (param $s1 i32) (param $s2 i32) (param $s3 i32) (param $len i32)
    (local $zero v128) (local $poly v128) (local $p v128) (local $q v128) (local $v v128)
    (local.set $poly (i8x16.splat (i32.const 0x1d)))
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (local.set $p (v128.load offset=0 (local.get $accp)))
        (local.set $q (v128.load offset=0 (local.get $accq)))
        (local.set $v (v128.load offset=0 (local.get $s0)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=0 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=0 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=0 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=0 (local.get $outp) (local.get $p))
        (v128.store offset=0 (local.get $outq) (local.get $q))
        (local.set $p (v128.load offset=16 (local.get $accp)))
        (local.set $q (v128.load offset=16 (local.get $accq)))
        (local.set $v (v128.load offset=16 (local.get $s0)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=16 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=16 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=16 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=16 (local.get $outp) (local.get $p))
        (v128.store offset=16 (local.get $outq) (local.get $q))
        (local.set $p (v128.load offset=32 (local.get $accp)))
        (local.set $q (v128.load offset=32 (local.get $accq)))
        (local.set $v (v128.load offset=32 (local.get $s0)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=32 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=32 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=32 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=32 (local.get $outp) (local.get $p))
        (v128.store offset=32 (local.get $outq) (local.get $q))
        (local.set $p (v128.load offset=48 (local.get $accp)))
        (local.set $q (v128.load offset=48 (local.get $accq)))
        (local.set $v (v128.load offset=48 (local.get $s0)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=48 (local.get $s1)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=48 (local.get $s2)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (local.set $v (v128.load offset=48 (local.get $s3)))
        (local.set $p (v128.xor (local.get $p) (local.get $v)))
        (local.set $q (v128.xor (v128.xor (i8x16.add (local.get $q) (local.get $q)) (v128.and (i8x16.lt_s (local.get $q) (local.get $zero)) (local.get $poly))) (local.get $v)))
        (v128.store offset=48 (local.get $outp) (local.get $p))
        (v128.store offset=48 (local.get $outq) (local.get $q))
        (local.set $outp (i32.add (local.get $outp) (i32.const 64)))
        (local.set $outq (i32.add (local.get $outq) (i32.const 64)))
        (local.set $accp (i32.add (local.get $accp) (i32.const 64)))
        (local.set $accq (i32.add (local.get $accq) (i32.const 64)))
        (local.set $s0 (i32.add (local.get $s0) (i32.const 64)))
        (local.set $s1 (i32.add (local.get $s1) (i32.const 64)))
        (local.set $s2 (i32.add (local.get $s2) (i32.const 64)))
        (local.set $s3 (i32.add (local.get $s3) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0))))))

  ;; Two lost data chunks, last step: Pxy = accp ^ p, Qxy = accq ^ q,
  ;; dx = a * Qxy ^ b * Pxy, dy = Pxy ^ dx (a's tables at ta, b's at tb).
  (func $finish_pair (param $dx i32) (param $dy i32) (param $accp i32) (param $accq i32) (param $p i32) (param $q i32) (param $ta i32) (param $tb i32) (param $len i32)
    (local $m0f v128) (local $alo v128) (local $ahi v128) (local $blo v128) (local $bhi v128) (local $pxy v128) (local $qxy v128) (local $v v128)
    (local.set $m0f (i8x16.splat (i32.const 0x0f)))
    (local.set $alo (v128.load offset=0 (local.get $ta)))
    (local.set $ahi (v128.load offset=16 (local.get $ta)))
    (local.set $blo (v128.load offset=0 (local.get $tb)))
    (local.set $bhi (v128.load offset=16 (local.get $tb)))
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (local.set $pxy (v128.xor (v128.load offset=0 (local.get $accp)) (v128.load offset=0 (local.get $p))))
        (local.set $qxy (v128.xor (v128.load offset=0 (local.get $accq)) (v128.load offset=0 (local.get $q))))
        (local.set $v (v128.xor
            (v128.xor (i8x16.swizzle (local.get $alo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $ahi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f))))
            (v128.xor (i8x16.swizzle (local.get $blo) (v128.and (local.get $pxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $bhi) (v128.and (i16x8.shr_u (local.get $pxy) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=0 (local.get $dx) (local.get $v))
        (v128.store offset=0 (local.get $dy) (v128.xor (local.get $pxy) (local.get $v)))
        (local.set $pxy (v128.xor (v128.load offset=16 (local.get $accp)) (v128.load offset=16 (local.get $p))))
        (local.set $qxy (v128.xor (v128.load offset=16 (local.get $accq)) (v128.load offset=16 (local.get $q))))
        (local.set $v (v128.xor
            (v128.xor (i8x16.swizzle (local.get $alo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $ahi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f))))
            (v128.xor (i8x16.swizzle (local.get $blo) (v128.and (local.get $pxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $bhi) (v128.and (i16x8.shr_u (local.get $pxy) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=16 (local.get $dx) (local.get $v))
        (v128.store offset=16 (local.get $dy) (v128.xor (local.get $pxy) (local.get $v)))
        (local.set $pxy (v128.xor (v128.load offset=32 (local.get $accp)) (v128.load offset=32 (local.get $p))))
        (local.set $qxy (v128.xor (v128.load offset=32 (local.get $accq)) (v128.load offset=32 (local.get $q))))
        (local.set $v (v128.xor
            (v128.xor (i8x16.swizzle (local.get $alo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $ahi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f))))
            (v128.xor (i8x16.swizzle (local.get $blo) (v128.and (local.get $pxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $bhi) (v128.and (i16x8.shr_u (local.get $pxy) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=32 (local.get $dx) (local.get $v))
        (v128.store offset=32 (local.get $dy) (v128.xor (local.get $pxy) (local.get $v)))
        (local.set $pxy (v128.xor (v128.load offset=48 (local.get $accp)) (v128.load offset=48 (local.get $p))))
        (local.set $qxy (v128.xor (v128.load offset=48 (local.get $accq)) (v128.load offset=48 (local.get $q))))
        (local.set $v (v128.xor
            (v128.xor (i8x16.swizzle (local.get $alo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $ahi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f))))
            (v128.xor (i8x16.swizzle (local.get $blo) (v128.and (local.get $pxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $bhi) (v128.and (i16x8.shr_u (local.get $pxy) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=48 (local.get $dx) (local.get $v))
        (v128.store offset=48 (local.get $dy) (v128.xor (local.get $pxy) (local.get $v)))
        (local.set $dx (i32.add (local.get $dx) (i32.const 64)))
        (local.set $dy (i32.add (local.get $dy) (i32.const 64)))
        (local.set $accp (i32.add (local.get $accp) (i32.const 64)))
        (local.set $accq (i32.add (local.get $accq) (i32.const 64)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (local.set $q (i32.add (local.get $q) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0))))))

  ;; One lost data chunk from Q: dx = c * (accq ^ q) (c's tables at tabs).
  (func $finish_q (param $dx i32) (param $accq i32) (param $q i32) (param $tabs i32) (param $len i32)
    (local $m0f v128) (local $lo v128) (local $hi v128) (local $qxy v128)
    (local.set $m0f (i8x16.splat (i32.const 0x0f)))
    (local.set $lo (v128.load offset=0 (local.get $tabs)))
    (local.set $hi (v128.load offset=16 (local.get $tabs)))
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (local.set $qxy (v128.xor (v128.load offset=0 (local.get $accq)) (v128.load offset=0 (local.get $q))))
        (v128.store offset=0 (local.get $dx)
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f)))))
        (local.set $qxy (v128.xor (v128.load offset=16 (local.get $accq)) (v128.load offset=16 (local.get $q))))
        (v128.store offset=16 (local.get $dx)
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f)))))
        (local.set $qxy (v128.xor (v128.load offset=32 (local.get $accq)) (v128.load offset=32 (local.get $q))))
        (v128.store offset=32 (local.get $dx)
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f)))))
        (local.set $qxy (v128.xor (v128.load offset=48 (local.get $accq)) (v128.load offset=48 (local.get $q))))
        (v128.store offset=48 (local.get $dx)
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $qxy) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $qxy) (i32.const 4)) (local.get $m0f)))))
        (local.set $dx (i32.add (local.get $dx) (i32.const 64)))
        (local.set $accq (i32.add (local.get $accq) (i32.const 64)))
        (local.set $q (i32.add (local.get $q) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0))))))

  ;; dst ^= c * src (c's tables at tabs). The source lanes are read before any store, so dst
  ;; may be src itself.
  (func (export "mul_xor") (param $dst i32) (param $src i32) (param $len i32) (param $tabs i32)
    (local $m0f v128) (local $lo v128) (local $hi v128) (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $m0f (i8x16.splat (i32.const 0x0f)))
    (local.set $lo (v128.load offset=0 (local.get $tabs)))
    (local.set $hi (v128.load offset=16 (local.get $tabs)))
    (block $done
      (br_if $done (i32.le_s (local.get $len) (i32.const 0)))
      (loop $rows
        (local.set $v0 (v128.load offset=0 (local.get $src)))
        (local.set $v1 (v128.load offset=16 (local.get $src)))
        (local.set $v2 (v128.load offset=32 (local.get $src)))
        (local.set $v3 (v128.load offset=48 (local.get $src)))
        (v128.store offset=0 (local.get $dst) (v128.xor (v128.load offset=0 (local.get $dst))
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $v0) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v0) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=16 (local.get $dst) (v128.xor (v128.load offset=16 (local.get $dst))
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $v1) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v1) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=32 (local.get $dst) (v128.xor (v128.load offset=32 (local.get $dst))
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $v2) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v2) (i32.const 4)) (local.get $m0f))))))
        (v128.store offset=48 (local.get $dst) (v128.xor (v128.load offset=48 (local.get $dst))
          (v128.xor (i8x16.swizzle (local.get $lo) (v128.and (local.get $v3) (local.get $m0f)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v3) (i32.const 4)) (local.get $m0f))))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
        (local.set $src (i32.add (local.get $src) (i32.const 64)))
        (local.set $len (i32.sub (local.get $len) (i32.const 64)))
        (br_if $rows (i32.gt_s (local.get $len) (i32.const 0)))))))
