# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :class:`simulator.draws.NumpyDraws`: a NumPy ``Generator``'s scalar
draws without its per-call Python overhead, from the very same stream.

The draws call the generator's own bit generator (its ``bitgen_t`` from the
``BitGenerator`` capsule NumPy documents for C extensions) through the same
algorithms NumPy's ``Generator`` uses for one scalar: ``random`` is ``next_double``;
``integers`` is Lemire's multiply-and-reject on 32-bit words (Lemire, *Fast Random
Integer Generation in an Interval*, ACM TOMACS 2019) as ``random_bounded_uint64_fill``
does for ranges below 2**32; ``poisson`` with a mean below 10 is the multiplication
method (Knuth, TAOCP vol. 2, 3.4.1). Anything else (``lognormal``, wide ranges, large
means) is the generator's own method, so the stream stays the generator's and a run
draws exactly what it drew through NumPy. ``tests/simulator/test_sim_draws.py``
checks the sequences are identical.
"""

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.math cimport exp
from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef extern from *:
    """
    typedef struct maestro_bitgen {
        void *state;
        uint64_t (*next_uint64)(void *st);
        uint32_t (*next_uint32)(void *st);
        double (*next_double)(void *st);
        uint64_t (*next_raw)(void *st);
    } maestro_bitgen_t;
    """
    ctypedef struct maestro_bitgen_t:
        void *state
        uint64_t (*next_uint64)(void *st) noexcept nogil
        uint32_t (*next_uint32)(void *st) noexcept nogil
        double (*next_double)(void *st) noexcept nogil


cdef class Draws:
    """Scalar draws from ``generator`` (a ``numpy.random.Generator``), same stream."""

    cdef maestro_bitgen_t* _bg
    cdef readonly object generator
    cdef object _capsule

    def __cinit__(self, generator):
        self.generator = generator
        self._capsule = generator.bit_generator.capsule
        self._bg = <maestro_bitgen_t*>PyCapsule_GetPointer(self._capsule, "BitGenerator")

    cpdef double random(self):
        """``Generator.random()``: a float in [0, 1)."""
        return self._bg.next_double(self._bg.state)

    def integers(self, low, high=None):
        """``int(Generator.integers(low, high))``: an int in [low, high) (``[0, low)``
        when ``high`` is None)."""
        if high is None:
            low, high = 0, low
        cdef int64_t lo, hi
        try:
            lo, hi = low, high
        except OverflowError:
            return int(self.generator.integers(low, high))
        if hi <= lo or hi - lo - 1 > 0xFFFFFFFF:  # errors and wide ranges: NumPy's own
            return int(self.generator.integers(low, high))
        cdef uint64_t rng = <uint64_t>(hi - lo - 1)
        cdef uint32_t rng_excl
        cdef uint64_t m
        cdef uint32_t leftover, threshold
        if rng == 0:
            return lo
        if rng == 0xFFFFFFFF:
            return lo + <int64_t>self._bg.next_uint32(self._bg.state)
        rng_excl = <uint32_t>rng + 1
        m = (<uint64_t>self._bg.next_uint32(self._bg.state)) * rng_excl
        leftover = <uint32_t>(m & 0xFFFFFFFF)
        if leftover < rng_excl:
            threshold = (<uint32_t>0xFFFFFFFF - <uint32_t>rng) % rng_excl
            while leftover < threshold:
                m = (<uint64_t>self._bg.next_uint32(self._bg.state)) * rng_excl
                leftover = <uint32_t>(m & 0xFFFFFFFF)
        return lo + <int64_t>(m >> 32)

    def poisson(self, double lam):
        """``int(Generator.poisson(lam))``."""
        if not (0.0 < lam < 10.0):
            return int(self.generator.poisson(lam))
        cdef double enlam = exp(-lam), prod = 1.0
        cdef int64_t x = 0
        while True:
            prod *= self._bg.next_double(self._bg.state)
            if prod > enlam:
                x += 1
            else:
                return x

    def lognormal(self, double mean, double sigma):
        """``float(Generator.lognormal(mean, sigma))``."""
        return float(self.generator.lognormal(mean, sigma))
