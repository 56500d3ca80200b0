"""The environment every test that runs mpirun uses: as root, 1 OpenMP
thread per rank, oversubscription allowed; under the ASan build Open MPI's
never-freed start-up memory is suppressed by library name
(tests/lsan_mpi.supp), its plugins stay loaded so they keep their names,
and stacks are unwound fully so a leak inside libmpi is seen as libmpi's."""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def mpi_env(**extra):
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMP_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1",
                OMPI_MCA_mca_base_component_disable_dlclose="1",
                LSAN_OPTIONS="suppressions=%s:print_suppressions=0" % os.path.join(_HERE, "lsan_mpi.supp"),
                ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":fast_unwind_on_malloc=0", **extra)
