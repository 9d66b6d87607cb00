"""hwsim: cycle and energy simulator of compiled Programs (Numba kernels + numpy reference)."""
