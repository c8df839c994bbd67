"""The shape of Redis's HyperLogLog: how many registers, and the largest value one holds.

Shared by the reference backend (``igcore._reference.counters``) and the Redis string format
(``igcore.counters._hll_format``), so that the format, which every backend uses, imports no backend.
"""

HLL_P = 14  # 2**14 registers: a standard error of 1.04 / sqrt(16384) = 0.81%
HLL_REGISTERS = 1 << HLL_P
HLL_Q = 64 - HLL_P  # hash bits left for the run of zeros
HLL_MAX_REGISTER = HLL_Q + 1  # the largest value a register can take
