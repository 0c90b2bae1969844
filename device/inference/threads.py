"""Thread budget of the device process: OpenCV and BLAS follow ``inference.num_threads``.

Why: on a 2-4 core board that also runs the lock's I/O, OpenCV's and OpenBLAS's own thread pools fight the
interpreter for cores. Measured here under load (2 CPUs, load average ~5): 1:N identify over 10,000 templates took
3.2 ms median / 14 ms p95 with OpenBLAS's default threads and 0.8 / 2.2 ms with one; preprocessing was faster
with OpenCV's threading off. With one configured thread, both run single-threaded.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("biolock.inference")
_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_limiter: object | None = None  # keeps threadpoolctl's limits in force for the life of the process


def limit_runtime_threads(num_threads: int) -> dict[str, object]:
    """Apply the thread budget to OpenCV and BLAS (idempotent); returns what was set, for logs and the bench."""
    global _limiter
    n = max(1, int(num_threads))
    done: dict[str, object] = {}
    if "numpy" not in sys.modules:  # before numpy loads, the environment is enough
        for name in _ENV:
            os.environ.setdefault(name, str(n))
        done["env"] = n
    try:
        import cv2

        cv2.setNumThreads(0 if n == 1 else n)  # 0 = OpenCV's parallel framework off (faster than 1 thread)
        done["opencv"] = cv2.getNumThreads()
    except ImportError:  # pragma: no cover - OpenCV is part of the device extra
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.debug("threadpoolctl not installed: BLAS keeps its default thread count (set OPENBLAS_NUM_THREADS)")
    else:
        _limiter = threadpool_limits(limits=n, user_api="blas")
        done["blas"] = n
    return done
