"""The environment every test that runs mpirun uses: as root, 1 OpenMP
thread per rank, oversubscription allowed; under the ASan build Open MPI's
never-freed start-up memory is suppressed by library name
(tests/lsan_mpi.supp), its plugins stay loaded so they keep their names,
and stacks are unwound fully so a leak inside libmpi is seen as libmpi's.

leak_check=False (the two longest MPI tests, dist_test.py and
ckpt_fault_test.py): the ranks run with AddressSanitizer's checks but
without LeakSanitizer. The full unwind on every malloc that the
suppressions need cost dist_test.py 245 s of its 245 s under ASan against
102 s without (2 cores, 2026-12-04); the trainer's start, training,
checkpoint, resume, evaluation and save paths keep their leak checks in
the other MPI tests (official_cli, world_resize, timeline, preview, plot,
pth_cli) and the in-process trainer tests."""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def mpi_env(leak_check=True, **extra):
    asan = os.environ.get("ASAN_OPTIONS", "")
    asan += ":fast_unwind_on_malloc=0" if leak_check else ":detect_leaks=0"
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMP_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1",
                OMPI_MCA_mca_base_component_disable_dlclose="1",
                LSAN_OPTIONS="suppressions=%s:print_suppressions=0" % os.path.join(_HERE, "lsan_mpi.supp"),
                ASAN_OPTIONS=asan, **extra)
