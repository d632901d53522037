"""Launcher helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import torch
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config, launcher: str, what: str = 'training') -> None:
    """Without CUDA: gloo process group, and DDP wrapping the CPU module (no device ids).

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which a CPU build of torch
    lacks, so the process group is created here (the Runner skips an initialized one).
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'CPU {what} supports --launcher none or pytorch, got {launcher}')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
