"""Lava ProcessModels of lava_dl (Numba kernels from ``lava_dl.core``).

This directory is searched by Lava's compiler through ``lava_dl.proc``: import
its modules as ``lava_dl.proc.<module>``, never as ``lava_dl.process_models.<module>``.
Module names must not clash with those in ``lava_dl/proc/``.
"""
