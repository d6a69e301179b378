# Two entry points for a fresh Debian/Ubuntu machine (no ROS, no GPU):
#   make demo   - set up, then run the main job on the shipped sample data
#   make test   - set up, then run the test suite
VENV    ?= .venv
PY      := $(VENV)/bin/python
DATA    ?= ../shared/data
OUT     ?= out
PYTEST_ARGS ?=

# Debian packages: libosmesa6 lets MuJoCo (the ground-truth simulator) render on the CPU;
# open3d needs libgl1 and libusb-1.0-0.
APT_PACKAGES := libosmesa6 libgl1 libusb-1.0-0

.PHONY: setup system-deps demo test bench clean

setup: system-deps $(VENV)/.installed

# Installs missing Debian packages when run as root; otherwise says what to install.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
		else echo "missing Debian packages: $$missing (run: sudo apt-get install $$missing)"; fi; \
	fi

# torch is pinned to 2.13.0 in setup.py: that release is the local CPU wheel; an unpinned
# torch would pull several GB of CUDA builds.
$(VENV)/.installed: setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	mkdir -p $(OUT)
	$(VENV)/bin/ros-gs bag from-rgbd $(DATA)/7scenes_kitchen $(OUT)/kitchen.mcap --overwrite \
		--color-camera kinect-v1
	$(VENV)/bin/ros-gs bag info $(OUT)/kitchen.mcap
	$(VENV)/bin/ros-gs replay $(OUT)/kitchen.mcap --node image_stats --out $(OUT)/kitchen_stats.mcap --overwrite
	$(VENV)/bin/ros-gs replay $(OUT)/kitchen.mcap --out $(OUT)/kitchen_map.mcap --duration 4 --overwrite \
		--launch launch/ros_gs.launch.yaml --arg depth_info:=/camera/depth/camera_info \
		--services config/services/demo_save_map.yaml --service-log $(OUT)/kitchen_services.yaml
	$(VENV)/bin/ros-gs eval $(OUT)/kitchen_map.mcap $(OUT)/kitchen.mcap --plot $(OUT)/kitchen_trajectory.png
	$(VENV)/bin/ros-gs render $(OUT)/kitchen_map/map.ply $(OUT)/kitchen_map.png --size 640 480 \
		--intrinsics 585 585 320 240 --pose 0 0 0 0 0 0 1
	$(VENV)/bin/ros-gs bag from-rgbd $(DATA)/7scenes_kitchen $(OUT)/kitchen_later.mcap --first-frame 60 \
		--max-frames 40 --color-camera kinect-v1 --overwrite
	$(VENV)/bin/ros-gs replay $(OUT)/kitchen_later.mcap --out $(OUT)/kitchen_localised.mcap --overwrite \
		--set mapper.map_path=$(OUT)/kitchen_map --set mapper.mapper.update_map=false
	$(VENV)/bin/ros-gs eval $(OUT)/kitchen_localised.mcap $(OUT)/kitchen_later.mcap --plot $(OUT)/kitchen_localised.png
	$(VENV)/bin/ros-gs bag from-ouster $(DATA)/ouster/OS-1-128_v2.3.0_1024x10_lb_n3.pcap \
		$(DATA)/ouster/OS-1-128_v2.3.0_1024x10.json $(OUT)/ouster.mcap --overwrite
	$(VENV)/bin/ros-gs bag info $(OUT)/ouster.mcap
	$(VENV)/bin/ros-gs bag from-mujoco walkthrough $(OUT)/walkthrough.mcap --duration 5 --noise --overwrite
	$(VENV)/bin/ros-gs bag info $(OUT)/walkthrough.mcap
	$(VENV)/bin/ros-gs replay $(OUT)/walkthrough.mcap --node lidar_odometry --out $(OUT)/walkthrough_odom.mcap \
		--overwrite --params config/lidar_odometry_indoor.yaml --services config/services/demo_save_lidar_map.yaml \
		--set lidar_odometry.image_topic=/cameras/rig_front/color/image_raw \
		--set lidar_odometry.camera_info_topic=/cameras/rig_front/color/camera_info
	$(VENV)/bin/ros-gs eval $(OUT)/walkthrough_odom.mcap $(OUT)/walkthrough.mcap --plot $(OUT)/walkthrough_trajectory.png
	$(VENV)/bin/ros-gs render $(OUT)/walkthrough_lidar_map/map.ply $(OUT)/walkthrough_lidar_map.png --size 640 480 \
		--intrinsics 500 500 320 240 --pose 0 0 10 1 0 0 0
	$(VENV)/bin/ros-gs render $(DATA)/splats/guitar.3dgs.ply $(OUT)/guitar_front.png --size 640 480 \
		--pose 4.2 -1.5 0.2 0 -0.7071068 0 0.7071068 --depth $(OUT)/guitar_front_depth.npy
	$(VENV)/bin/ros-gs render $(DATA)/splats/guitar.compressed.ply $(OUT)/guitar_side.png --size 640 480 \
		--pose 0.2 -1.5 -4 0 0 0 1
	$(VENV)/bin/ros-gs bag from-mujoco push $(OUT)/push.mcap --duration 2.2 --size 160 120 --camera-rate 30 --overwrite
	$(VENV)/bin/ros-gs replay $(OUT)/push.mcap --node physics_tracker --params config/physics_tracker_push.yaml \
		--out $(OUT)/push_tracked.mcap --overwrite
	$(VENV)/bin/ros-gs eval-objects $(OUT)/push_tracked.mcap $(OUT)/push.mcap --plot $(OUT)/push_tracking.png
	$(VENV)/bin/ros-gs bag from-mujoco tabletop $(OUT)/tabletop.mcap --duration 0.35 --overwrite
	$(VENV)/bin/ros-gs replay $(OUT)/tabletop.mcap --node grasp_planner --params config/grasp_planner_tabletop.yaml \
		--out $(OUT)/tabletop_grasps.mcap --overwrite --services config/services/demo_grasps.yaml \
		--service-log $(OUT)/tabletop_grasps.yaml
	$(VENV)/bin/ros-gs grasp $(OUT)/tabletop.mcap "the banana" --params config/grasp_planner_tabletop.yaml \
		--png $(OUT)/tabletop_grasps.png
	$(VENV)/bin/ros-gs bag from-mujoco orbit $(OUT)/orbit.mcap --duration 6 --noise --overwrite
	$(VENV)/bin/ros-gs replay $(OUT)/orbit.mcap --launch launch/ros_gs.launch.yaml --arg camera:=/cameras/head \
		--out $(OUT)/orbit_graph.mcap --overwrite
	$(VENV)/bin/ros-gs report $(OUT)/orbit.mcap $(OUT)/orbit_graph.mcap --html $(OUT)/orbit_report.html \
		--image $(OUT)/push_tracking.png --image $(OUT)/tabletop_grasps.png
	$(VENV)/bin/ros-gs bag from-graspnet $(DATA)/graspnet_tabletop $(OUT)/graspnet.mcap --overwrite
	$(VENV)/bin/ros-gs query-grasps $(OUT)/graspnet.mcap "something yellow" --json --max-grasps 3 > $(OUT)/graspnet_query.json
	$(VENV)/bin/ros-gs query-grasps $(OUT)/graspnet.mcap "the tall red box" --max-grasps 3

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OUT) build install log
