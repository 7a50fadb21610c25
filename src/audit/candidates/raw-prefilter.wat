;; Teddy-style multi-literal prefilter (after the aho-corasick crate's packed/teddy). Each 16-byte
;; block is loaded once; for fingerprint byte j, t_j = lo_j[b & 15] & hi_j[b >> 4] per lane (two
;; i8x16.swizzle lookups) holds the buckets whose j-th byte b may be. A fingerprint ENDS at lane k
;; when t3[k] & t2[k-1] & t1[k-2] & t0[k-3] is nonzero, lanes below 0 coming from the previous block
;; (byte shifts across two registers, as Teddy's alignr). Nibble sets make it a superset: JS verifies.
;; Memory (imported, laid out by raw-prefilter.ts): 0..127 the eight nibble tables
;; (lo0 hi0 lo1 hi1 lo2 hi2 lo3 hi3), 128..143 scratch, then the data and the output area.
(module
  (import "env" "memory" (memory 1))
  ;; Where the last call stopped: at or past `end` when it got through, else the block to resume at.
  (global $next (export "next") (mut i32) (i32.const 0))
  ;; Scans blocks at, at+16, ... below end, data starting at from; writes (fingerprint start,
  ;; bucket bits) u32 pairs at out and returns how many; stops early when fewer than 16 of cap remain.
  (func (export "scan") (param $at i32) (param $end i32) (param $out i32) (param $cap i32) (param $from i32) (result i32)
    (local $n i32) (local $mask i32) (local $lane i32) (local $slot i32)
    (local $res v128) (local $v v128) (local $lo v128) (local $hi v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $p0 v128) (local $p1 v128) (local $p2 v128)
    (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128)
    (local $lo2 v128) (local $hi2 v128) (local $lo3 v128) (local $hi3 v128)
    (local.set $lo0 (v128.load (i32.const 0)))
    (local.set $hi0 (v128.load (i32.const 16)))
    (local.set $lo1 (v128.load (i32.const 32)))
    (local.set $hi1 (v128.load (i32.const 48)))
    (local.set $lo2 (v128.load (i32.const 64)))
    (local.set $hi2 (v128.load (i32.const 80)))
    (local.set $lo3 (v128.load (i32.const 96)))
    (local.set $hi3 (v128.load (i32.const 112)))
    ;; resuming mid-data: the previous block's t0..t2, which the first block's shifts need
    (if (i32.gt_u (local.get $at) (local.get $from))
      (then
        (local.set $v (v128.load (i32.sub (local.get $at) (i32.const 16))))
        (local.set $lo (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $p0 (v128.and (i8x16.swizzle (local.get $lo0) (local.get $lo)) (i8x16.swizzle (local.get $hi0) (local.get $hi))))
        (local.set $p1 (v128.and (i8x16.swizzle (local.get $lo1) (local.get $lo)) (i8x16.swizzle (local.get $hi1) (local.get $hi))))
        (local.set $p2 (v128.and (i8x16.swizzle (local.get $lo2) (local.get $lo)) (i8x16.swizzle (local.get $hi2) (local.get $hi))))))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $v (v128.load (local.get $at)))
        (local.set $lo (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        ;; high nibbles by a 16-bit shift and a mask: V8 lowers that better than i8x16.shr_u
        (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))
        (local.set $t0 (v128.and (i8x16.swizzle (local.get $lo0) (local.get $lo)) (i8x16.swizzle (local.get $hi0) (local.get $hi))))
        (local.set $t1 (v128.and (i8x16.swizzle (local.get $lo1) (local.get $lo)) (i8x16.swizzle (local.get $hi1) (local.get $hi))))
        (local.set $t2 (v128.and (i8x16.swizzle (local.get $lo2) (local.get $lo)) (i8x16.swizzle (local.get $hi2) (local.get $hi))))
        (local.set $t3 (v128.and (i8x16.swizzle (local.get $lo3) (local.get $lo)) (i8x16.swizzle (local.get $hi3) (local.get $hi))))
        ;; lane k of shuffle(p, t, 16-s ..) is t[k-s], from p when k < s (V8 emits palignr)
        (local.set $res
          (v128.and
            (v128.and (local.get $t3)
              (i8x16.shuffle 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 (local.get $p2) (local.get $t2)))
            (v128.and
              (i8x16.shuffle 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 (local.get $p1) (local.get $t1))
              (i8x16.shuffle 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 (local.get $p0) (local.get $t0)))))
        (local.set $p0 (local.get $t0))
        (local.set $p1 (local.get $t1))
        (local.set $p2 (local.get $t2))
        (if (v128.any_true (local.get $res))
          (then
            ;; a block has at most 16 candidates: stop before the output could overflow
            (if (i32.lt_u (i32.sub (local.get $cap) (local.get $n)) (i32.const 16))
              (then (global.set $next (local.get $at)) (return (local.get $n))))
            (v128.store (i32.const 128) (local.get $res))
            (local.set $mask (i8x16.bitmask (i8x16.ne (local.get $res) (v128.const i32x4 0 0 0 0))))
            (loop $lanes
              (local.set $lane (i32.ctz (local.get $mask)))
              (local.set $slot (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 3))))
              (i32.store (local.get $slot) (i32.sub (i32.add (local.get $at) (local.get $lane)) (i32.const 3)))
              (i32.store offset=4 (local.get $slot) (i32.load8_u offset=128 (local.get $lane)))
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (local.set $mask (i32.and (local.get $mask) (i32.sub (local.get $mask) (i32.const 1))))
              (br_if $lanes (local.get $mask)))))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $blocks)))
    (global.set $next (local.get $at))
    (local.get $n)))
