"""Utilities: logging, seeding, checkpoints, registries, meters, file helpers, user errors.

Submodules imported on demand: ``run_record`` (config.yaml / run_info.json of a run) and
``run_dir`` (inspecting an existing output directory).
"""
from .devices import resolve_device
from .errors import (EXIT_INTERRUPTED, EXIT_USER_ERROR, USER_ERRORS, CheckpointFileError, CheckpointMismatchError,
                     ConfigError, InputError, OutputWriteError, TrainingDiverged, UserError,
                     error_message, report_user_error, shown, write_failure, written_as)
from .image_check import find_unreadable_images, format_bad_images, image_problem
from .images import (MAX_IMAGE_PIXELS, ImageNotFoundError, ImageReadError, image_size,
                     read_image, to_display_rgb)
from .logger import buffer_early_output, log_only, setup_logger, teardown_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry, RegistryKeyError, check_availability
from .reproducibility import (collect_env_info, configure_determinism, get_rng_state,
                              set_random_seed, set_rng_state)
from .tools import (atomic_write, atomic_write_text, check_isfile, count_noun, listdir_nohidden,
                    mkdir_if_missing, path_problem, read_json, remove_stale_temp_files,
                    tolist_if_not, write_json)
from .torchtools import (BEST_MODEL_NAME, BEST_POINTER, LATEST_POINTER, LoadedCheckpoint,
                         ModuleCheckpoints, checkpoint_file_name, load_checkpoint,
                         load_pretrained_weights, load_state_dict_checked,
                         read_checkpoint, read_checkpoint_pointer,
                         read_module_checkpoint, resume_from_checkpoint, save_checkpoint,
                         strip_module_prefix)

__all__ = [
    "buffer_early_output", "log_only", "setup_logger", "teardown_logger", "AverageMeter", "MetricMeter",
    "Registry", "RegistryKeyError", "check_availability", "collect_env_info",
    "configure_determinism", "get_rng_state", "set_random_seed", "set_rng_state", "atomic_write",
    "atomic_write_text", "check_isfile", "count_noun", "listdir_nohidden", "mkdir_if_missing", "path_problem", "read_image",
    "read_json", "remove_stale_temp_files", "tolist_if_not", "write_json", "BEST_MODEL_NAME", "BEST_POINTER",
    "LATEST_POINTER", "checkpoint_file_name", "load_checkpoint", "load_pretrained_weights", "read_checkpoint_pointer",
    "resume_from_checkpoint", "save_checkpoint", "UserError", "ConfigError", "InputError",
    "USER_ERRORS", "EXIT_USER_ERROR", "EXIT_INTERRUPTED", "TrainingDiverged", "OutputWriteError", "write_failure", "written_as", "error_message", "report_user_error", "shown",
    "CheckpointFileError", "CheckpointMismatchError", "LoadedCheckpoint", "ModuleCheckpoints",
    "load_state_dict_checked", "read_checkpoint",
    "read_module_checkpoint", "strip_module_prefix", "find_unreadable_images", "format_bad_images", "image_problem",
    "resolve_device", "MAX_IMAGE_PIXELS", "ImageNotFoundError", "ImageReadError", "image_size", "to_display_rgb",
]
