"""lava-dl's ``slayer.jitconfig``: settings of its just-in-time CUDA C++ builds.

lava_dl compiles nothing with a C++ toolchain (its CUDA kernels are numba-cuda kernels, built
from the same rule functions as the CPU kernels), so these names exist for lava-dl code that sets
them and have no effect.
"""

#: lava-dl passed it to ``torch.utils.cpp_extension`` as ``TORCH_CUDA_ARCH_LIST``; unused here.
TORCH_CUDA_ARCH_LIST: str | None = None
#: lava-dl printed a line when it compiled a CUDA extension; unused here.
VERBOSE: bool = False
