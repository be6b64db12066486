"""Block-quantized matrix products in C (blockq.c), and a whole decode step built on them
(step.c), for decoding a token fast on a CPU.

blockq.c and step.c are compiled on first use with the system C compiler (about a second) into
$LLM_MAGICS_CACHE/kernels/, keyed by the source, the compiler and the machine's
CPU flags, and loaded with ctypes: no torch headers, no build step at install time.
Where no compiler is found, `available()` is False and callers use torch's own ops.

The shared library is linked against the OpenMP runtime torch has already loaded
(same soname, so one thread pool in the process), and every call says how many
threads to use, so the thread policy (threads.py) governs these products too.

Layouts (see blockq.c), for a weight W (N, K) with K a multiple of 32:
    q4: codes uint8 (N, K/2),       scales (N, K/32), mins (N, K/32)
    q5: codes uint8 (N, K/32 * 20), scales (N, K/32), mins (N, K/32), or none (empty) where
        every min is -16 * its scale (Q5_0's symmetric blocks)
    q8: codes int8 (N, K),          scales (N, K/32)
Scales and mins are float16, as llama.cpp stores them (a q4 block: 16 + 2 + 2 bytes), where that
holds every one of a matrix's exactly, else float32 (Q4_K's: a float16 times a 6-bit sub-scale).
`pack_q4` and `pack_q8` round them to float16 first, as llama.cpp's Q4_1 and Q8_0 do.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name(name) for name in ("blockq.c", "step.c")]
BLOCK = 32
_lib = None
_failed: str | None = None


def _cache_dir() -> Path:
    root = os.environ.get("LLM_MAGICS_CACHE") or Path.home() / ".cache" / "llm_magics"
    return Path(root) / "kernels"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def _build() -> Path:
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler (gcc or cc) on PATH")
    flags = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]
    source = b"".join(path.read_bytes() for path in SOURCES)
    key = hashlib.sha256(source + " ".join([compiler, *flags, _cpu_flags()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"blockq-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # build aside, then rename: atomic
        built = Path(tmp) / target.name
        result = subprocess.run([compiler, *flags, "-o", str(built), *map(str, SOURCES)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {result.stderr.strip()[:500]}")
        os.replace(built, target)
    return target


def _load():
    global _lib, _failed
    if _lib is not None or _failed is not None:
        return _lib
    try:
        lib = ctypes.CDLL(str(_build()))
    except (OSError, RuntimeError) as err:
        _failed = str(err)
        log.warning("Block-quantized kernels unavailable (%s); using torch's int8 path instead.", err)
        return None
    _declare(lib)
    _lib = lib
    return lib


def _declare(lib) -> None:
    """The ctypes signatures of blockq.c's and step.c's functions (scales and mins are void pointers
    followed by the `half` flag)."""
    P, I = ctypes.c_void_p, ctypes.c_int
    lib.q4_matmul.argtypes = [P, P, P, I, P, P, P, I, I, I, I]
    lib.q8_matmul.argtypes = [P, P, I, P, P, I, I, I, I]
    lib.q4_dequantize.argtypes = [P, P, P, I, P, I, I, I]
    lib.q8_dequantize.argtypes = [P, P, I, P, I, I, I]
    lib.q4_dequantize_bf16.argtypes = [P, P, P, I, P, I, I, I]
    lib.q8_dequantize_bf16.argtypes = [P, P, I, P, I, I, I]
    lib.q4_matmul_q8x.argtypes = [P, P, P, I, P, P, I, I, I, I]
    lib.q8_matmul_q8x.argtypes = [P, P, I, P, P, I, I, I, I]
    lib.q5_matmul.argtypes = lib.q4_matmul.argtypes
    lib.q5_matmul_q8x.argtypes = lib.q4_matmul_q8x.argtypes
    lib.q5_dequantize.argtypes = lib.q5_dequantize_bf16.argtypes = lib.q4_dequantize.argtypes
    for fn in (lib.q4_matmul, lib.q8_matmul, lib.q4_dequantize, lib.q8_dequantize, lib.q4_dequantize_bf16,
               lib.q8_dequantize_bf16, lib.q4_matmul_q8x, lib.q8_matmul_q8x, lib.q5_matmul, lib.q5_matmul_q8x,
               lib.q5_dequantize, lib.q5_dequantize_bf16):  # fmt: skip
        fn.restype = None
    lib.q8x_native.argtypes, lib.q8x_native.restype = [], ctypes.c_int
    lib.decode_step.argtypes, lib.decode_step.restype = [P, P, P, P, P, I, I, I], None


def available() -> bool:
    """True when blockq.c compiled and loaded here."""
    return _load() is not None


# ─── packing: float32 weights -> codes and scales ──────────────────────────────


def pack_q4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W (N, K) -> (codes (N, K/2) uint8, scales (N, K/32) float16, mins (N, K/32) float16):
    w ≈ scale * q + min, q in 0..15.

    As llama.cpp's Q4_1: each block's scale, (max - min) / 15, and its minimum are rounded to float16,
    and the codes are found against the rounded ones. Exact (to float32 rounding) for weights that came
    from a Q4_0 or Q4_1 GGUF block whose smallest and largest weights are codes 0 and 15; a Q4_K block's
    scale is no float16 (`pack_exact` holds those).
    """
    N, K = w.shape
    blocks = w.float().reshape(N, K // BLOCK, BLOCK)
    low, high = blocks.amin(-1), blocks.amax(-1)  # (N, K/32)
    scale, low = ((high - low) / 15).half(), low.half()
    d, m = scale.float()[..., None], low.float()[..., None]  # (N, K/32, 1): the stored values
    q = ((blocks - m) / d.clamp(min=1e-30)).round().clamp(0, 15).to(torch.uint8)  # rounding m up can make a code -0.x: 0
    codes = q[..., : BLOCK // 2] | (q[..., BLOCK // 2 :] << 4)  # byte j: q[j] low nibble, q[j + 16] high
    return codes.reshape(N, K // 2).contiguous(), scale.contiguous(), low.contiguous()


def pack_exact(w: torch.Tensor) -> tuple[str, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """W (N, K) -> (kind, codes, scales, mins) in q4 or q5 when that holds every weight exactly, else None.
    The scales and mins are float16 where that holds them all (`_float16_blocks`), else float32.

    A block from a GGUF holds d * q + m for integer codes q (Q4_K sub-blocks, Q5_0, Q5_1...), but
    its codes need not run from 0 to the top code (a Q5_0 block often uses 3..28), so min/max
    scaling (`pack_q4`) finds the wrong step. Here each block's step is its smallest gap between
    distinct weights, refined to span / round(span / gap), or cut finer where the block has so few
    codes that the gap spans several steps (codes 0, 7, 15); the rebuild check confirms that every
    weight is held. Blocks that fit 16 codes make q4,
    32 make q5 (blockq.c's q5 layout). Rows are done in chunks to bound the sort's memory; the
    first chunk is a quick test, since float weights that came from no block format fail at once.
    """
    N, K = w.shape
    chunk = max(1, (1 << 22) // K)  # ~4M weights at a time
    parts, top = [], 0
    for start in range(0, N, chunk):
        blocks = w[start : start + chunk].float().reshape(-1, K // BLOCK, BLOCK)
        low, high = blocks.amin(-1), blocks.amax(-1)
        span = high - low
        gaps = blocks.sort(-1).values.diff(dim=-1)
        gap = torch.where(gaps > 1e-3 * span[..., None], gaps, torch.inf).amin(-1)  # inf: a constant block
        ratio = (span / gap).nan_to_num(0.0, 0.0)  # 0 for a constant block
        where = (blocks - low[..., None]) / gap[..., None]  # in units of the gap: whole numbers, if it is the step
        odd = ((where - where.round()).abs() > 1e-3).any(-1)  # a block of few codes (0, 7, 15): its gap is 7 steps
        if odd.any():
            ratio[odd] = _finer_steps(where[odd], ratio[odd])
        steps = ratio.round().clamp(min=1)  # codes the block spans; 1 for a constant block
        if steps.max() > 31:
            return None
        scale = span / steps
        q = ((blocks - low[..., None]) / scale.clamp(min=1e-30)[..., None]).round()
        error = (q * scale[..., None] + low[..., None] - blocks).abs().max()
        if error > 1e-5 * blocks.abs().max().clamp(min=1e-30):
            return None
        parts.append((q.to(torch.uint8), scale, low))
        top = max(top, int(steps.max()))
    halves = [_float16_blocks(*part, top=15 if top <= 15 else 31) for part in parts]
    if all(half is not None for half in halves):
        parts = halves
    q = torch.cat([p[0] for p in parts]).reshape(N, K // BLOCK, BLOCK)
    scales = torch.cat([p[1] for p in parts]).reshape(N, K // BLOCK).contiguous()
    mins = torch.cat([p[2] for p in parts]).reshape(N, K // BLOCK).contiguous()
    if top <= 15:
        nibbles = (q[..., : BLOCK // 2] & 0xF) | ((q[..., BLOCK // 2 :] & 0xF) << 4)  # (N, K/32, 16)
        return "q4", nibbles.reshape(N, K // 2).contiguous(), scales, mins
    return "q5", _q5_codes(q), scales, mins


def _q5_codes(q: torch.Tensor) -> torch.Tensor:
    """Codes q (N, K/32, 32) in 0..31 -> blockq.c's q5 layout (N, K/32 * 20) uint8."""
    N, nblocks, _ = q.shape
    q = q.to(torch.uint8)
    nibbles = (q[..., : BLOCK // 2] & 0xF) | ((q[..., BLOCK // 2 :] & 0xF) << 4)  # (N, K/32, 16)
    bit = torch.tensor([1 << j for j in range(8)], dtype=torch.int32)
    high_bits = (q >> 4).to(torch.int32).reshape(N, nblocks, 4, 8)  # bit j of the block's uint32
    high_bytes = (high_bits * bit).sum(-1).to(torch.uint8)  # (N, K/32, 4): little-endian
    return torch.cat([nibbles, high_bytes], dim=-1).reshape(N, nblocks * 20).contiguous()  # (N, K/32 * 20)


def pack_q5_0(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """W (N, K) -> (codes (N, K/32 * 20) uint8, scales (N, K/32) float16) when every block is llama.cpp's
    Q5_0, w = d * (q - 16) with q in 0..31 and d a float16, else None: q5 without mins (blockq.c).

    Q5_0 picks d = -max / 16 for the block's weight of largest magnitude (d is negative where that
    weight is positive), so that weight is -16 * d exactly, and d follows from it; the rebuild check
    confirms every other weight. None also where every block spans 16 codes (pack_exact: q4).
    """
    N, K = w.shape
    blocks = w.float().reshape(N, K // BLOCK, BLOCK)
    d = blocks.gather(-1, blocks.abs().argmax(-1, keepdim=True)) / -16  # (N, K/32, 1): exact (a power of two)
    if not torch.equal(d.half().float(), d):
        return None
    q = (blocks / torch.where(d == 0, 1.0, d)).round() + 16  # a zero block: codes 16, weights 0
    fits_q4 = (q.amax(-1) - q.amin(-1)).max() <= 15  # every block spans 16 codes: q4 holds it in fewer bytes
    if fits_q4 or q.min() < 0 or q.max() > 31 or not torch.equal((q - 16) * d, blocks):
        return None
    return _q5_codes(q), d.squeeze(-1).half().contiguous()


def _finer_steps(where, ratio) -> torch.Tensor:
    """For blocks whose smallest gap is several steps (`where` (B, 32): the weights above the block's
    minimum in units of that gap; `ratio` (B,): the span in those units): span / step for the largest
    step that puts every weight on a whole code (the gap cut in k, k = 1..31), or 32 (does not fit)."""
    found = torch.full_like(ratio, 32.0)
    for k in range(31, 0, -1):  # the last k that fits wins: the smallest, the coarsest step
        scaled = where * k
        fits = ((scaled - scaled.round()).abs() <= 1e-3).all(-1) & (ratio * k <= 31.5)
        found = torch.where(fits, ratio * k, found)
    return found


def _float16_blocks(q, scale, low, top: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Blocks (codes q (..., 32) uint8, scale (...), low (...): w = scale * q + low, from `pack_exact`) with
    float16 scales and mins holding the same weights, or None where float16 cannot hold them all.

    A block's step can be a float16 while its smallest weight is not: a Q5_0 block holds d * (q - 16)
    with a float16 d, and its smallest weight, d * (lowest q - 16), needs up to 16 bits. The same
    weights are held by the minimum moved down k steps and the codes moved up by k (to Q5_0's own
    -16 d), or, where the codes fill 0..top, by counting down from k steps above the minimum: scale -s,
    codes k - q. llama.cpp's d is negative when a block's weight of largest magnitude is positive, so
    such a block spans -15 |d| .. 16 |d|, and only 16 |d| = -16 d is a float16. The first k that
    makes the minimum a float16 and keeps the codes within 0..top is taken, counting down last.
    """
    if not torch.equal(scale.half().float(), scale):
        return None
    q = q.long()
    steps = torch.arange(top + 1, dtype=torch.float64)  # (top + 1,) values of k
    low, step = low.double()[..., None], scale.double()[..., None]
    mins = torch.cat([low - steps * step, low + steps * step], dim=-1)  # (..., 2 (top + 1)): exact in float64
    highest = q.amax(-1, keepdim=True)
    possible = torch.cat([highest + steps <= top, steps >= highest], dim=-1)  # codes q + k, or k - q, in 0..top
    fits = (mins.half().double() == mins) & possible
    if not fits.any(-1).all():
        return None
    first = fits.int().argmax(-1, keepdim=True)  # (..., 1)
    down, k = first > top, first % (top + 1)
    codes = torch.where(down, k - q, q + k).to(torch.uint8)
    scales = torch.where(down.squeeze(-1), -scale, scale)
    return codes, scales.half(), mins.gather(-1, first).squeeze(-1).half()


def pack_q8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W (N, K) -> (codes (N, K) int8, scales (N, K/32) float16): w ≈ scale * q, q in -127..127.

    As llama.cpp's Q8_0: each block's scale, amax / 127, is rounded to float16, and the codes are found
    against the rounded one (exact for Q8_0 blocks)."""
    N, K = w.shape
    blocks = w.float().reshape(N, K // BLOCK, BLOCK)
    scale = (blocks.abs().amax(-1) / 127).half()
    q = (blocks / scale.float().clamp(min=1e-30)[..., None]).round().clamp(-127, 127).to(torch.int8)
    return q.reshape(N, K).contiguous(), scale.contiguous()


# ─── products ──────────────────────────────────────────────────────────────────


def _half(scales: torch.Tensor, mins: torch.Tensor | None = None) -> int:
    """blockq.c's `half` flag: 1 for float16 scales (and mins), 0 for float32 ones."""
    dtypes = {scales.dtype} if mins is None else {scales.dtype, mins.dtype}
    if dtypes not in ({torch.float16}, {torch.float32}):
        raise ValueError(f"Scales and mins are all float16 or all float32, not {', '.join(map(str, dtypes))}.")
    return int(scales.dtype == torch.float16)


def q4_matmul(x: torch.Tensor, codes, scales, mins, threads: int) -> torch.Tensor:
    """x (M, K) float32 contiguous -> x @ Wᵀ (M, N)."""
    M, K = x.shape
    N = codes.shape[0]
    y = torch.empty(M, N)
    xsum = torch.empty(M * K // BLOCK)
    _lib.q4_matmul(codes.data_ptr(), scales.data_ptr(), mins.data_ptr(), _half(scales, mins), x.data_ptr(),
                   y.data_ptr(), xsum.data_ptr(), M, N, K, threads)  # fmt: skip
    return y


def q8_matmul(x: torch.Tensor, codes, scales, threads: int) -> torch.Tensor:
    return _product(_lib.q8_matmul, x, codes, scales, threads=threads)


def _q5_mins(scales: torch.Tensor, mins: torch.Tensor | None) -> tuple[int | None, int]:
    """(mins pointer, half flag) of a q5 matrix; no pointer for Q5_0's (mins None or empty: -16 * d)."""
    if mins is None or mins.numel() == 0:
        return None, _half(scales)
    return mins.data_ptr(), _half(scales, mins)


def q5_matmul(x: torch.Tensor, codes, scales, mins, threads: int) -> torch.Tensor:
    """x (M, K) float32 contiguous -> x @ Wᵀ (M, N) for a q5 W (mins None or empty: Q5_0's, -16 * scales)."""
    M, K = x.shape
    y = torch.empty(M, codes.shape[0])
    xsum = torch.empty(M * K // BLOCK)
    m, half = _q5_mins(scales, mins)
    _lib.q5_matmul(codes.data_ptr(), scales.data_ptr(), m, half, x.data_ptr(), y.data_ptr(), xsum.data_ptr(), M,
                   codes.shape[0], K, threads)  # fmt: skip
    return y


def q5_matmul_q8x(x: torch.Tensor, codes, scales, mins, threads: int) -> torch.Tensor:
    (M, K), y = x.shape, torch.empty(x.shape[0], codes.shape[0])
    m, half = _q5_mins(scales, mins)
    _lib.q5_matmul_q8x(codes.data_ptr(), scales.data_ptr(), m, half, x.data_ptr(), y.data_ptr(), M, y.shape[1], K,
                       threads)  # fmt: skip
    return y


def int8_dot_native() -> bool:
    """True when the int8-activation products run on SIMD integer dot products here (AVX512-VNNI
    or AVX2), else on plain C loops, which compute the same integer sums, slower."""
    return available() and bool(_lib.q8x_native())


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) -> (codes (M, K) int8, scales (M, K/32)): the rounding the *_q8x products apply to x
    (scale = amax/127 per block of 32, nearest, ties to even). In torch, for tests and reference."""
    M, K = x.shape
    blocks = x.float().reshape(M, K // BLOCK, BLOCK)
    scale = blocks.abs().amax(-1) / 127
    inverse = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
    return (blocks * inverse[..., None]).round().to(torch.int8).reshape(M, K), scale


def _product(fn, x: torch.Tensor, *weights, threads: int) -> torch.Tensor:
    """y (M, N) = fn(codes, scales[, mins], half, x, y, M, N, K, threads) for x (M, K) float32 contiguous."""
    M, K = x.shape
    y = torch.empty(M, weights[0].shape[0])
    fn(*(w.data_ptr() for w in weights), _half(*weights[1:]), x.data_ptr(), y.data_ptr(), M, y.shape[1], K, threads)
    return y


def q4_matmul_q8x(x: torch.Tensor, codes, scales, mins, threads: int) -> torch.Tensor:
    """x (M, K) float32 contiguous -> x @ Wᵀ (M, N), with x rounded to int8 blocks (see blockq.c)."""
    return _product(_lib.q4_matmul_q8x, x, codes, scales, mins, threads=threads)


def q8_matmul_q8x(x: torch.Tensor, codes, scales, threads: int) -> torch.Tensor:
    return _product(_lib.q8_matmul_q8x, x, codes, scales, threads=threads)


def decode_step(model_address: int, x, logits, k_cache, v_cache, pos: int, max_len: int, threads: int) -> None:
    """step.c's decode_step on a qmodel struct at `model_address` (see runtime/fused.py, which builds it)."""
    _lib.decode_step(model_address, x.data_ptr(), logits.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), pos,
                     max_len, threads)  # fmt: skip


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"The kernels dequantize to float32 or bfloat16, not {dtype}.")


def q4_dequantize(codes, scales, mins, threads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """W (N, K) in float32, or in bfloat16 (each weight rounded to nearest even) for a bf16 prefill."""
    _check_dtype(dtype)
    N, K = codes.shape[0], codes.shape[1] * 2
    w = torch.empty(N, K, dtype=dtype)
    fn = _lib.q4_dequantize_bf16 if dtype == torch.bfloat16 else _lib.q4_dequantize
    fn(codes.data_ptr(), scales.data_ptr(), mins.data_ptr(), _half(scales, mins), w.data_ptr(), N, K, threads)
    return w


def q5_dequantize(codes, scales, mins, threads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    _check_dtype(dtype)
    N, K = codes.shape[0], scales.shape[1] * BLOCK
    w = torch.empty(N, K, dtype=dtype)
    fn = _lib.q5_dequantize_bf16 if dtype == torch.bfloat16 else _lib.q5_dequantize
    fn(codes.data_ptr(), scales.data_ptr(), *_q5_mins(scales, mins), w.data_ptr(), N, K, threads)
    return w


def q8_dequantize(codes, scales, threads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    _check_dtype(dtype)
    N, K = codes.shape
    w = torch.empty(N, K, dtype=dtype)
    fn = _lib.q8_dequantize_bf16 if dtype == torch.bfloat16 else _lib.q8_dequantize
    fn(codes.data_ptr(), scales.data_ptr(), _half(scales), w.data_ptr(), N, K, threads)
    return w
