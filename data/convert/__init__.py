"""Converters between episode stores and LeRobotDataset (v3.0, v2.1) directories and robomimic hdf5 files."""

from data.convert.lerobot import IMAGE_TOLERANCE, export_lerobot, import_lerobot
from data.convert.robomimic import export_robomimic, import_robomimic

__all__ = ["IMAGE_TOLERANCE", "export_lerobot", "export_robomimic", "import_lerobot", "import_robomimic"]
