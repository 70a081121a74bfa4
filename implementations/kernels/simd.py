"""Fixed-width vectors for Numba kernels, and an exp that LLVM's loop vectoriser can vectorise.

Numba keeps neither a handful of scalar accumulators nor a small local array in
registers across a loop over sparse rows (``NUMBA_SLP_VECTORIZE`` is off, and a local
array lives in memory). An LLVM vector value does stay in a register, so this module
gives Numba one: :class:`Vec`, a ``<lanes x float>`` value, and a few intrinsics on it
(:func:`vload`, :func:`vstore`, :func:`vsplat`, :func:`vfma`, :func:`vadd`,
:func:`vmul`, :func:`hsum`, :func:`vkeep`). A Vec never leaves compiled code.

The width follows the machine Numba compiles for: 64 bytes with AVX-512, 32 with AVX,
16 otherwise (:data:`VECTOR_BYTES`). It is read from the feature string of Numba's own
code generator, which honours ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` and is part
of the key of Numba's on-disk cache, so a cached kernel always matches the width of the
process that loads it. A width the machine lacks would still be correct (LLVM splits
the vectors), only slower.

:func:`exp` is written with scalar operations only (FMA and bit casts through the
intrinsics here), branch-free, so a loop applying it to an array is vectorised by LLVM.
It is within 2 ulp of libm over the whole range, down to subnormal results
(tests/test_simd.py). It is not a general-purpose library.

The compiled helpers here count no references (``_nrt=False``); why, and why that is
safe for them, is said in :mod:`numba_sparse`, their user.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.core.registry import cpu_target
from numba.extending import intrinsic, overload

import implementations.kernels.numba_cache  # noqa: F401  (before any cached function: the shared stamp)


def _vector_bytes(features: str) -> int:
    """Return the vector width, in bytes, that an LLVM feature string (``+avx2,-avx512f,...``) supports."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return 64
    if "avx" in enabled:
        return 32
    return 16


# Numba's code generator holds the features it compiles for (host, or NUMBA_CPU_FEATURES).
VECTOR_BYTES = _vector_bytes(cpu_target.target_context.codegen()._tm_features)


def lanes(dtype: np.dtype | type) -> int:
    """Return how many elements of ``dtype`` one vector holds."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


class Vec(types.Type):
    """The Numba type of a vector of ``lanes`` elements of ``dtype`` (an LLVM vector value)."""

    def __init__(self, dtype: types.Float, n: int):
        self.dtype, self.lanes = dtype, n
        super().__init__(name=f"Vec({dtype} x {n})")


@register_default(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _vec_of(dtype: types.Float) -> Vec:
    return Vec(dtype, VECTOR_BYTES // (dtype.bitwidth // 8))


def _llvm_intrinsic(builder, name, value_type, n_args):
    """Return the declaration of an LLVM intrinsic such as llvm.fma.v16f32 on value_type (scalar or vector)."""
    element = value_type.element if isinstance(value_type, ir.VectorType) else value_type
    suffix = "f32" if isinstance(element, ir.FloatType) else "f64"
    if isinstance(value_type, ir.VectorType):
        suffix = f"v{value_type.count}{suffix}"
    function_type = ir.FunctionType(value_type, [value_type] * n_args)
    return cgutils.get_or_insert_function(builder.module, function_type, f"{name}.{suffix}")


def _element_pointer(context, builder, array_type, array, index, vec_type):
    """Return a pointer to array.data[index], cast to a pointer to vec_type's LLVM type."""
    data = context.make_array(array_type)(context, builder, array).data
    address = builder.gep(data, [index])
    return builder.bitcast(address, context.get_value_type(vec_type).as_pointer())


@intrinsic
def vload(typingctx, array, index):
    """Return the vector array[index : index + lanes] of a 1-d contiguous float array (no bounds check)."""
    if not (
        isinstance(array, types.Array) and isinstance(array.dtype, types.Float) and isinstance(index, types.Integer)
    ):
        return None
    vec = _vec_of(array.dtype)

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = _element_pointer(context, builder, signature.args[0], args[0], index, vec)
        return builder.load(pointer, align=array.dtype.bitwidth // 8)

    return vec(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    """Store the vector value into array[index : index + lanes] (no bounds check)."""
    if not (isinstance(array, types.Array) and isinstance(value, Vec) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = _element_pointer(context, builder, signature.args[0], args[0], index, value)
        builder.store(args[2], pointer, align=value.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def vsplat(typingctx, x):
    """Return a vector with x in every lane."""
    if not isinstance(x, types.Float):
        return None
    vec = _vec_of(x)

    def codegen(context, builder, signature, args):
        vector_type = context.get_value_type(vec)
        one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), args[0], ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vec.lanes), [0] * vec.lanes)
        return builder.shuffle_vector(one, one, mask)

    return vec(x), codegen


def _binary(operation):
    @intrinsic
    def apply(typingctx, a, b):
        if not (isinstance(a, Vec) and a == b):
            return None

        def codegen(context, builder, signature, args):
            return getattr(builder, operation)(args[0], args[1])

        return a(a, b), codegen

    return apply


vadd = _binary("fadd")
vmul = _binary("fmul")


@intrinsic
def vfma(typingctx, a, b, c):
    """Return a * b + c, rounded once, lane by lane (scalars or vectors)."""
    if not (isinstance(a, (Vec, types.Float)) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        fma = _llvm_intrinsic(builder, "llvm.fma", args[0].type, 3)
        return builder.call(fma, list(args))

    return a(a, b, c), codegen


@intrinsic
def hsum(typingctx, v):
    """Return the sum of v's lanes, added as a tree (halves, then quarters, ...): a fixed order."""
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, signature, args):
        value, n = args[0], v.lanes
        while n > 1:
            n //= 2
            low = builder.shuffle_vector(value, value, ir.Constant(ir.VectorType(ir.IntType(32), n), list(range(n))))
            high_lanes = list(range(n, 2 * n))
            high = builder.shuffle_vector(value, value, ir.Constant(ir.VectorType(ir.IntType(32), n), high_lanes))
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))

    return v.dtype(v), codegen


@intrinsic
def vkeep(typingctx, d, w, bound):
    """Return d with a zero in each lane where |w| > bound (lane by lane); the caller knows that there
    subtracting a product of d from w would leave w unchanged.
    """
    if not (isinstance(d, Vec) and d == w == bound):
        return None

    def codegen(context, builder, signature, args):
        d_value, w_value, bound_value = args
        fabs = _llvm_intrinsic(builder, "llvm.fabs", w_value.type, 1)
        unchanged = builder.fcmp_ordered(">", builder.call(fabs, [w_value]), bound_value)
        return builder.select(unchanged, ir.Constant(d_value.type, None), d_value)

    return d(d, w, bound), codegen


# Bytes in a cache line on the x86 and Arm cores this runs on: prefetch_lines asks for one per line.
CACHE_LINE = 64


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring the cache line holding array[index] into its caches (LLVM's ``llvm.prefetch``:
    a read, kept close). A hint only: it changes nothing, never faults, and is dropped where it has no
    instruction."""
    if not (isinstance(array, types.Array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        address = builder.bitcast(builder.gep(data, [index]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch.p0")
        # read (0), keep in every cache level (locality 3), data cache (1)
        builder.call(function, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(array, index), codegen


@intrinsic
def _bits_as_float(typingctx, bits):
    """Return the float whose bits are ``bits`` (int32 -> float32, int64 -> float64)."""
    if not isinstance(bits, types.Integer) or bits.bitwidth not in (32, 64):
        return None
    result = types.float32 if bits.bitwidth == 32 else types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(bits), codegen


@njit(inline="always")
def _exp64(x):
    """Return e**x for a float64 x, within 2 ulp of libm (branch-free: vectorises in a loop)."""
    # Clamped so that n fits the two exponent factors below; exp(+-1000) is already inf / 0.
    x = min(max(x, -1000.0), 1000.0)
    # Round x / ln 2 to the nearest integer by adding and subtracting 1.5 * 2**52.
    shifter = 6755399441055744.0
    n = (x * 1.4426950408889634 + shifter) - shifter
    r = vfma(-n, 0.6931471803691238, x)  # ln 2 split into a high part with trailing zeros and the rest
    r = vfma(-n, 1.9082149292705877e-10, r)
    # exp(r) for |r| <= ln(2) / 2: Taylor to degree 13 (the next term is below 1e-17).
    p = 1.6059043836821613e-10
    p = vfma(p, r, 2.08767569878681e-09)
    p = vfma(p, r, 2.505210838544172e-08)
    p = vfma(p, r, 2.755731922398589e-07)
    p = vfma(p, r, 2.7557319223985893e-06)
    p = vfma(p, r, 2.48015873015873e-05)
    p = vfma(p, r, 0.0001984126984126984)
    p = vfma(p, r, 0.001388888888888889)
    p = vfma(p, r, 0.008333333333333333)
    p = vfma(p, r, 0.041666666666666664)
    p = vfma(p, r, 0.16666666666666666)
    p = vfma(p, r, 0.5)
    p = vfma(p, r, 1.0)
    p = vfma(p, r, 1.0)
    # Times 2**n in two exact factors, so a subnormal result is rounded once, at the end.
    k = np.int64(n)
    k1 = k >> 1
    scale1 = _bits_as_float((k1 + 1023) << 52)
    scale2 = _bits_as_float((k - k1 + 1023) << 52)
    return (p * scale1) * scale2


@njit(inline="always")
def _exp32(x):
    """Return e**x for a float32 x, within 2 ulp of libm (branch-free: vectorises in a loop).

    Evaluated in float64 and rounded once at the end: all-float32 arithmetic was 3 ulp
    off at worst, and a float32 subnormal result is rounded correctly this way.
    """
    x = min(max(np.float64(x), -150.0), 150.0)  # exp(+-150) is inf / 0 in float32
    shifter = 6755399441055744.0
    n = (x * 1.4426950408889634 + shifter) - shifter
    r = vfma(-n, 0.6931471803691238, x)
    r = vfma(-n, 1.9082149292705877e-10, r)
    p = 2.48015873015873e-05  # Taylor to degree 8: the next term is 1e-3 of a float32 ulp
    p = vfma(p, r, 0.0001984126984126984)
    p = vfma(p, r, 0.001388888888888889)
    p = vfma(p, r, 0.008333333333333333)
    p = vfma(p, r, 0.041666666666666664)
    p = vfma(p, r, 0.16666666666666666)
    p = vfma(p, r, 0.5)
    p = vfma(p, r, 1.0)
    p = vfma(p, r, 1.0)
    # |n| <= 217: 2**n is one normal float64, and the one rounding is the cast to float32.
    return np.float32(p * _bits_as_float((np.int64(n) + 1023) << 52))


def exp(x):
    """Return e**x, float32 or float64, within 2 ulp of libm; callable from Numba code only."""
    raise NotImplementedError("simd.exp runs inside Numba-compiled code")


@overload(exp, inline="always")
def _exp_overload(x):
    if x == types.float64:
        return lambda x: _exp64(x)
    if x == types.float32:
        return lambda x: _exp32(x)
    return None


@njit(cache=True, _nrt=False)
def exp_array(x, out):
    """Set out (n,) = e**x (n,) with :func:`exp`, element by element. (Numba JIT-compiled; for tests)"""
    for i in range(x.size):
        out[i] = exp(x[i])


# ---------------------------------------------------------------------------------------
# Rows of vectors. Each helper walks a row of ``width`` elements (a multiple of the lanes
# L) in chunks of up to four vectors, kept in registers while it runs over the terms; K
# is the chunk's vector count. All sums run over the terms in order, from zero, so they
# do not depend on the chunking. Flat arrays and offsets, no views: a view costs a
# reference count per call, and Numba checks no offset (the callers size the arrays).
# ---------------------------------------------------------------------------------------


@njit(cache=True, _nrt=False)
def sparse_combine(src, base, stride, pixels, codes, table, full, lo, hi, out, o, width, L, b):
    """Set out[o : o + width] = (sum over p in [lo, hi) of x_p * src[base + pixels[p] * stride :][:width]) + src[b:].
    (Numba JIT-compiled)

    x_p = table[codes[p] + full * p]: full is 0 for a table of values indexed by codes, 1 for a
    table holding every entry's value (codes then all zero). The bias src[b : b + width] is
    added to the finished sum, as the reference adds it to the finished product; none if b < 0.

    Chunks of two and of four vectors over a compact index have loops of their own, with no
    branch inside: LLVM did not take the branches on K and on full out of the loop, and
    they cost a third of the loop's time (measured).
    """
    zero = src.dtype.type(0.0)
    for col in range(0, width, 4 * L):
        K = min(4, (width - col) // L)
        a0 = a1 = a2 = a3 = vsplat(zero)
        if full == 0 and K == 4:
            for p in range(lo, hi):
                v = vsplat(table[np.int64(codes[p])])
                r = base + np.int64(pixels[p]) * stride + col
                a0 = vfma(v, vload(src, r), a0)
                a1 = vfma(v, vload(src, r + L), a1)
                a2 = vfma(v, vload(src, r + 2 * L), a2)
                a3 = vfma(v, vload(src, r + 3 * L), a3)
        elif full == 0 and K == 2:
            for p in range(lo, hi):
                v = vsplat(table[np.int64(codes[p])])
                r = base + np.int64(pixels[p]) * stride + col
                a0 = vfma(v, vload(src, r), a0)
                a1 = vfma(v, vload(src, r + L), a1)
        else:
            for p in range(lo, hi):
                v = vsplat(table[np.int64(codes[p]) + full * p])
                r = base + np.int64(pixels[p]) * stride + col
                a0 = vfma(v, vload(src, r), a0)
                if K > 1:
                    a1 = vfma(v, vload(src, r + L), a1)
                if K > 2:
                    a2 = vfma(v, vload(src, r + 2 * L), a2)
                if K > 3:
                    a3 = vfma(v, vload(src, r + 3 * L), a3)
        _store4(out, o + col, L, K, a0, a1, a2, a3, src, b + col if b >= 0 else -1)


@njit(cache=True, _nrt=False)
def dense_rows(src, base, stride, coef, c_base, c_row, c_stride, n, out, o, o_row, width, L, bias, b, lo, hi):
    """For each row e in [lo, hi), set out[o + e * o_row :][:width] = sum over t < n of
    coef[c_base + e * c_row + t * c_stride] * src[base + t * stride :][:width], plus bias[b : b + width] where
    b >= 0. (Numba JIT-compiled)

    Each row's sum is one FMA chain (terms in order, from zero, the bias added last), four
    rows at a time, a vector column at a time: four independent FMA chains share each load
    of src. One row alone waits out the latency of every FMA in its chain (a dense layer of
    30 inputs: 30 dependent FMAs per vector; a gradient row over a batch of 100: 100).
    """
    zero = src.dtype.type(0.0)
    for col in range(0, width, L):
        bc = b + col if b >= 0 else -1
        e = lo
        while e + 4 <= hi:
            c0 = c_base + e * c_row
            c1, c2, c3 = c0 + c_row, c0 + 2 * c_row, c0 + 3 * c_row
            a0 = a1 = a2 = a3 = vsplat(zero)
            for t in range(n):
                v, c = vload(src, base + t * stride + col), t * c_stride
                a0 = vfma(vsplat(coef[c0 + c]), v, a0)
                a1 = vfma(vsplat(coef[c1 + c]), v, a1)
                a2 = vfma(vsplat(coef[c2 + c]), v, a2)
                a3 = vfma(vsplat(coef[c3 + c]), v, a3)
            r = o + e * o_row + col
            if bc >= 0:
                w = vload(bias, bc)
                a0, a1, a2, a3 = vadd(a0, w), vadd(a1, w), vadd(a2, w), vadd(a3, w)
            vstore(out, r, a0)
            vstore(out, r + o_row, a1)
            vstore(out, r + 2 * o_row, a2)
            vstore(out, r + 3 * o_row, a3)
            e += 4
        while e < hi:  # the last rows, one at a time
            c0 = c_base + e * c_row
            a0 = vsplat(zero)
            for t in range(n):
                a0 = vfma(vsplat(coef[c0 + t * c_stride]), vload(src, base + t * stride + col), a0)
            if bc >= 0:
                a0 = vadd(a0, vload(bias, bc))
            vstore(out, o + e * o_row + col, a0)
            e += 1


@njit(cache=True, _nrt=False)
def _store4(out, o, L, K, a0, a1, a2, a3, bias, b):
    """Store the K vectors a0.. at out[o:], each plus its vector of bias[b:] if b >= 0."""
    if b >= 0:
        a0 = vadd(a0, vload(bias, b))
        a1 = vadd(a1, vload(bias, b + L)) if K > 1 else a1
        a2 = vadd(a2, vload(bias, b + 2 * L)) if K > 2 else a2
        a3 = vadd(a3, vload(bias, b + 3 * L)) if K > 3 else a3
    vstore(out, o, a0)
    if K > 1:
        vstore(out, o + L, a1)
    if K > 2:
        vstore(out, o + 2 * L, a2)
    if K > 3:
        vstore(out, o + 3 * L, a3)


@njit(cache=True, _nrt=False)
def scatter(dst, base, stride, pixels, codes, table, full, lo, hi, scale, d, o, width, L):
    """Add (scale * x_p) * d[o : o + width] to dst[base + pixels[p] * stride :][:width] for p in [lo, hi), one
    FMA per element; x_p as in :func:`sparse_combine`. (Numba JIT-compiled)

    Two vectors of the row per pass over the entries, then one: loops without a branch
    inside (LLVM did not take a branch out of these loops, neither this one nor full's).
    """
    col = 0
    while col + 2 * L <= width:
        d0, d1 = vload(d, o + col), vload(d, o + col + L)
        if full == 0:
            for p in range(lo, hi):
                v = vsplat(scale * table[np.int64(codes[p])])
                r = base + np.int64(pixels[p]) * stride + col
                vstore(dst, r, vfma(v, d0, vload(dst, r)))
                vstore(dst, r + L, vfma(v, d1, vload(dst, r + L)))
        else:
            for p in range(lo, hi):
                v = vsplat(scale * table[p])
                r = base + np.int64(pixels[p]) * stride + col
                vstore(dst, r, vfma(v, d0, vload(dst, r)))
                vstore(dst, r + L, vfma(v, d1, vload(dst, r + L)))
        col += 2 * L
    if col < width:
        d0 = vload(d, o + col)
        for p in range(lo, hi):
            v = vsplat(scale * table[np.int64(codes[p]) + full * p])
            r = base + np.int64(pixels[p]) * stride + col
            vstore(dst, r, vfma(v, d0, vload(dst, r)))


@njit(cache=True, _nrt=False)
def scatter_skip(dst, base, stride, pixels, codes, table, full, lo, hi, scale, d, o, width, L, bound):
    """Do what :func:`scatter` does, leaving out a lane of d in a row where |dst| > bound there (see
    :func:`vkeep`); the caller sets bound only where that provably changes nothing. (Numba JIT-compiled)

    Two vectors of the row per pass, then one, as in :func:`scatter`.
    """
    col = 0
    while col + 2 * L <= width:
        d0, d1, b0, b1 = vload(d, o + col), vload(d, o + col + L), vload(bound, col), vload(bound, col + L)
        for p in range(lo, hi):
            v = vsplat(scale * table[np.int64(codes[p]) + full * p])
            r = base + np.int64(pixels[p]) * stride + col
            w0, w1 = vload(dst, r), vload(dst, r + L)
            vstore(dst, r, vfma(v, vkeep(d0, w0, b0), w0))
            vstore(dst, r + L, vfma(v, vkeep(d1, w1, b1), w1))
        col += 2 * L
    if col < width:
        d0, b0 = vload(d, o + col), vload(bound, col)
        for p in range(lo, hi):
            v = vsplat(scale * table[np.int64(codes[p]) + full * p])
            r = base + np.int64(pixels[p]) * stride + col
            w0 = vload(dst, r)
            vstore(dst, r, vfma(v, vkeep(d0, w0, b0), w0))


@njit(cache=True, _nrt=False)
def axpy(dst, o, scale, a, d, do, width, L):
    """Add scale * (d[do : do + width] * a) to dst[o : o + width], each product rounded (no FMA): the reference's
    w - step * (delta * a) with scale = -step, bit for bit. (Numba JIT-compiled)"""
    s, c = vsplat(scale), vsplat(a)
    for col in range(0, width, L):
        vstore(dst, o + col, vadd(vload(dst, o + col), vmul(s, vmul(vload(d, do + col), c))))


@njit(cache=True, inline="always", _nrt=False)
def prefetch_lines(array, lo, hi):
    """Prefetch every cache line of array[lo:hi] (1-d, lo < hi within the array). (Numba JIT-compiled)"""
    for q in range(lo, hi, CACHE_LINE // array.itemsize):
        prefetch(array, q)
    prefetch(array, hi - 1)  # lo need not start a line: the last one may not have been reached


@njit(cache=True, _nrt=False)
def column_sum(src, base, stride, n, out, o, width, L):
    """Set out[o : o + width] = sum over t < n of src[base + t * stride :][:width], in order. (Numba JIT-compiled)"""
    zero = src.dtype.type(0.0)
    for col in range(0, width, L):
        acc = vsplat(zero)
        for t in range(n):
            acc = vadd(acc, vload(src, base + t * stride + col))
        vstore(out, o + col, acc)


__all__ = [
    "CACHE_LINE", "VECTOR_BYTES", "Vec", "axpy", "column_sum", "dense_rows", "exp", "exp_array",
    "hsum", "lanes", "prefetch", "prefetch_lines", "scatter", "scatter_skip", "sparse_combine", "vadd", "vfma",
    "vkeep", "vload", "vmul", "vsplat", "vstore",
]  # fmt: skip


if config.DISABLE_JIT:
    # NUMBA_DISABLE_JIT=1 runs the kernels as plain Python, for debugging: intrinsics cannot run
    # there, so a vector is a NumPy array of ``lanes`` elements and each operation its NumPy twin
    # (a * b + c with two roundings in place of one FMA; exp is NumPy's).

    def vload(array, index):
        return array[index : index + lanes(array.dtype)].copy()

    def vstore(array, index, value):
        array[index : index + value.size] = value

    def vsplat(x):
        return np.full(lanes(type(x)), x)

    def vadd(a, b):
        return a + b

    def vmul(a, b):
        return a * b

    def vfma(a, b, c):
        return a * b + c

    def hsum(v):
        while v.size > 1:
            v = v[: v.size // 2] + v[v.size // 2 :]
        return v[0]

    def vkeep(d, w, bound):
        return np.where(np.abs(w) > bound, 0, d).astype(d.dtype)

    def exp(x):
        return np.exp(x)

    def prefetch(array, index):
        pass
