"""The pure-Python backend: the readable definition of every igcore kernel.

Kernels receive arguments already checked and converted by the public modules (1-D, C-contiguous,
native int64 numpy arrays), and return what the compiled backends must return, exactly.
"""
