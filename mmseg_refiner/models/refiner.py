"""DiffusionRefiner: SegRefiner's training losses and reverse (coarse -> fine) loop."""
import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement, PixelData

from mmseg_refiner.registry import MODELS
from mmseg_refiner.utils.hardware import native_bf16

AUTOCAST_MODES = ('auto', None, 'fp32', 'bf16', 'fp16')
_AUTOCAST_DTYPES = {
    'auto': torch.bfloat16, None: None, 'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16
}
STOP_CRITERIA = ('coarse', 'change')

DEFAULT_TEST_CFG = dict(
    steps=None,  # None: all T timesteps; int n: the last n; or an explicit descending list
    batch_size=32,  # masks per U-Net call at inference
    crop_size=256,  # working resolution of the U-Net
    pad=20,  # context (px) around an instance's box
    area_thr=512,  # instances smaller than this (px) are returned unchanged
    mask_thr=0.5,
    stop_thr=0.0,  # adaptive stopping: 0 = fixed schedule (reference behaviour)
    stop_criterion='coarse',  # 'coarse': still coarse and disputed; 'change': prediction moved
    hr_size=768,  # mode='auto': boxes longer than this use the 'hr' strategy
    hr_fine_thr=0.9,  # hr: patch centres where fine_prob < thr * max
    hr_nms_iou=0.3,
    hr_max_patches=64,
    # U-Net precision: 'auto' = bf16 where the device has native bf16, else fp32; None or
    # 'fp32' = fp32 (the reference); 'bf16' / 'fp16' = forced (DiffusionRefiner.precision)
    autocast='auto',
    channels_last='auto',  # U-Net memory layout: 'auto' = on unless autocast is None/'fp32'
    compile=False,  # torch.compile the U-Net (bulk jobs: the first call compiles, ~minutes)
    guard=True,  # API growth guard: True = DEFAULT_GUARD, a dict, or None/False = off
    preset='default',  # 'default' | 'reference' (the published hr/global inference)
)


@dataclass
class RefineOutput:
    """Result of :meth:`DiffusionRefiner.refine_batch`.

    Attributes:
        prob (Tensor): (B, 1, H, W) foreground probability after the last step.
        fine_prob (Tensor): (B, 1, H, W) fine-state probability (the refiner's confidence).
        num_calls (Tensor): (B,) long, U-Net evaluations spent on each element.
    """
    prob: torch.Tensor
    fine_prob: torch.Tensor
    num_calls: torch.Tensor


@MODELS.register_module()
class DiffusionRefiner(BaseModel):
    """SegRefiner: model-agnostic segmentation refinement by discrete diffusion.

    Wang et al., "SegRefiner: Towards Model-Agnostic Segmentation Refinement with Discrete
    Diffusion Process", NeurIPS 2023.

    Args:
        backbone (dict): The denoiser, e.g. ``dict(type='SegRefinerUNet', ...)``.
        sampler (dict): The schedule, e.g. ``dict(type='TransitionSampler')``.
        data_preprocessor (dict, optional): Defaults to ``RefinerDataPreprocessor``.
        loss_mask (dict): BCE loss config. Defaults to weight 1.
        loss_texture (dict): Texture L1 loss config. Defaults to weight 5.
        train_cfg (dict, optional): Unused; kept for the OpenMMLab model signature.
        test_cfg (dict, optional): Inference options, see ``DEFAULT_TEST_CFG``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, backbone: dict, sampler: dict = dict(type='TransitionSampler'),
                 data_preprocessor: Optional[dict] = None,
                 loss_mask: dict = dict(type='MaskBCELoss', loss_weight=1.0),
                 loss_texture: dict = dict(type='TextureL1Loss',
                                           loss_weight=5.0), train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='RefinerDataPreprocessor')
        # The parts are built in the plugin's scope whatever the host's default scope is
        # (MODELS.build switches to the default scope's registry: under default_scope='mmdet'
        # 'RefinerDataPreprocessor' would be looked up in mmdet's registry).
        with DefaultScope.overwrite_default_scope('mmseg_refiner'):
            if isinstance(data_preprocessor, dict):
                data_preprocessor = MODELS.build(data_preprocessor)
            super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
            self.backbone = MODELS.build(backbone)
            self.sampler = MODELS.build(sampler)
            self.loss_mask = MODELS.build(loss_mask)
            self.loss_texture = MODELS.build(loss_texture)
        self.train_cfg = train_cfg or {}
        unknown = set(test_cfg or {}) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise KeyError(f'unknown test_cfg keys {sorted(unknown)}; '
                           f'valid: {sorted(DEFAULT_TEST_CFG)}')
        self.test_cfg = {**DEFAULT_TEST_CFG, **(test_cfg or {})}
        self._register_load_state_dict_pre_hook(self._map_released_keys)

    @staticmethod
    def _map_released_keys(state_dict, prefix, *args, **kwargs):
        """Accept the released SegRefiner checkpoints (``denoise_model.*`` keys) unchanged."""
        old = prefix + 'denoise_model.'
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + 'backbone.' + key[len(old):]] = state_dict.pop(key)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """mmengine's entry point: ``mode`` is 'loss', 'predict' or 'tensor'."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}')

    # -- training ---------------------------------------------------------------------------
    @staticmethod
    def _stack_masks(data_samples: Sequence[BaseDataElement], key: str) -> torch.Tensor:
        return torch.stack([getattr(s, key).data for s in data_samples]).float()

    def loss(self, inputs: torch.Tensor, data_samples: List[BaseDataElement]) -> Dict:
        """Losses of one batch: BCE (x1) + texture L1 (x5), and the batch IoU (logged).

        Args:
            inputs (Tensor): Normalized images (B, 3, H, W).
            data_samples (list[BaseDataElement]): each with ``gt_mask`` and ``coarse_mask``
                (``PixelData`` of shape (1, H, W)).
        """
        m0 = self._stack_masks(data_samples, 'gt_mask').to(inputs.device)
        mT = self._stack_masks(data_samples, 'coarse_mask').to(inputs.device)
        t = self.sampler.sample_timesteps(inputs.shape[0], device=inputs.device)
        mask_t = self.sampler.q_sample(m0, mT, t)
        logits = self.backbone(torch.cat([inputs, mask_t], dim=1), t)
        with torch.no_grad():
            pred, gt = logits >= 0, m0 >= 0.5
            inter = (pred & gt).flatten(1).sum(1).float()
            union = (pred | gt).flatten(1).sum(1).float()
            iou = (inter / union.clamp(min=1)).mean()
        return dict(loss_mask=self.loss_mask(logits, m0),
                    loss_texture=self.loss_texture(logits, m0), iou=iou)

    # -- inference --------------------------------------------------------------------------
    def predict(self, inputs: torch.Tensor,
                data_samples: List[BaseDataElement]) -> List[BaseDataElement]:
        """Refine each sample's ``coarse_mask`` at the input size (the validation path).

        Adds ``pred_mask`` (bool) and ``pred_fine_prob`` (float) PixelData to each sample.
        """
        coarse = self._stack_masks(data_samples, 'coarse_mask').to(inputs.device)
        out = self.refine_batch(inputs, coarse)
        for sample, prob, fine in zip(data_samples, out.prob, out.fine_prob):
            sample.pred_mask = PixelData(data=prob >= self.test_cfg['mask_thr'])
            sample.pred_fine_prob = PixelData(data=fine)
        return data_samples

    def _forward(self, inputs: torch.Tensor, data_samples=None) -> torch.Tensor:
        """Raw U-Net logits at the first reverse step (t = T-1), for export/inspection."""
        coarse = self._stack_masks(data_samples, 'coarse_mask').to(inputs.device)
        t = inputs.new_full((inputs.shape[0], ), self.sampler.num_timesteps - 1).long()
        return self.backbone(torch.cat([inputs, coarse], dim=1), t)

    # -- inference options ------------------------------------------------------------------
    def merged_cfg(self, overrides: Optional[dict] = None) -> dict:
        """The effective inference options: ``{**self.test_cfg, **overrides}``.

        ``self.test_cfg`` itself is not changed; the result is the ``cfg`` that
        :meth:`refine_batch` and the strategies take.

        Args:
            overrides (dict, optional): ``test_cfg`` keys and their values for one call.

        Raises:
            KeyError: A key is not a ``test_cfg`` key (the message lists the valid ones).
        """
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise KeyError(f'unknown test_cfg keys {sorted(unknown)}; '
                           f'valid: {sorted(DEFAULT_TEST_CFG)}')
        return {**self.test_cfg, **overrides}

    def precision(
            self, cfg: Optional[dict] = None,
            device: Union[str, torch.device, None] = None) -> Tuple[Optional[torch.dtype], bool]:
        """The U-Net's autocast dtype and memory layout under ``cfg``.

        ``autocast``: 'auto' = bf16 where ``device`` has native bf16
        (:func:`~mmseg_refiner.utils.hardware.native_bf16`), else fp32 (said once in the
        log); None / 'fp32' = plain fp32 (the reference); 'bf16' / 'fp16' = forced (forced
        bf16 without native support works but is slower than fp32, which the log says).
        ``channels_last``: 'auto' = on unless ``autocast`` is None / 'fp32'.

        Args:
            cfg (dict, optional): Inference options; None = ``self.test_cfg``.
            device (str | torch.device, optional): None = the refiner's device.

        Returns:
            tuple: (dtype or None for fp32, channels_last).
        """
        cfg = self.test_cfg if cfg is None else cfg
        mode, layout = cfg.get('autocast', 'auto'), cfg.get('channels_last', 'auto')
        if mode not in AUTOCAST_MODES:
            raise ValueError(f'test_cfg.autocast must be one of {AUTOCAST_MODES}, got {mode!r}')
        if layout not in ('auto', True, False):
            raise ValueError(f"test_cfg.channels_last must be 'auto', True or False, "
                             f'got {layout!r}')
        device = torch.device(device or self.data_preprocessor.mean.device)
        dtype = _AUTOCAST_DTYPES[mode]
        if mode in ('auto', 'bf16') and not native_bf16(device):
            if mode == 'auto':
                dtype = None
                _log_once(f"test_cfg.autocast='auto': {device.type} has no native bf16 "
                          '(AVX512-BF16/AMX, or CUDA Ampere+): the U-Net runs in fp32')
            else:
                _log_once(
                    f"test_cfg.autocast='bf16' on a {device.type} without native bf16: "
                    'it works, but slower than fp32', logging.WARNING)
        return dtype, layout is True or (layout == 'auto' and mode not in (None, 'fp32'))

    def _unet(self, cfg: dict, device: torch.device):
        """The U-Net callable for ``cfg`` (layout set, compiled if asked) and its autocast."""
        dtype, channels_last = self.precision(cfg, device)
        if hasattr(self.backbone, 'set_channels_last'):
            self.backbone.set_channels_last(channels_last)
        unet = self.backbone
        if cfg.get('compile', False):
            unet = self.__dict__.get('_compiled_unet')
            if unet is None:  # kept out of the module tree: state-dict keys stay the same
                unet = self.__dict__['_compiled_unet'] = _TimedFirstCall(
                    torch.compile(self.backbone), 'torch.compile: first U-Net call '
                    '(compilation + one forward)')
        autocast = torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype
                                  is not None)
        return unet, autocast

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def refine_batch(self, images: torch.Tensor, coarse: torch.Tensor,
                     steps: Union[None, int, Sequence[int]] = None,
                     generator: Optional[torch.Generator] = None, stop_thr: Optional[float] = None,
                     fine_prob_init: Optional[torch.Tensor] = None,
                     cfg: Optional[dict] = None) -> RefineOutput:
        """Run the reverse process on normalized images and coarse masks.

        Args:
            images (Tensor): (B, 3, H, W) normalized images.
            coarse (Tensor): (B, 1, H, W) coarse masks (0/1).
            steps (None | int | list[int]): Timesteps to run; see
                :meth:`TransitionSampler.timesteps`. Defaults to ``cfg['steps']``.
            generator (torch.Generator, optional): Makes the sampling reproducible.
            stop_thr (float, optional): Adaptive stopping: an element stops (its current
                prediction becomes final) once the share of pixels that later steps could
                still change (``cfg['stop_criterion']``, see :meth:`_stopped`) is below
                this. 0 reproduces the fixed schedule exactly. Defaults to
                ``cfg['stop_thr']``.
            fine_prob_init (Tensor, optional): (B, 1, H, W) fine probabilities to start
                from (the reference's local stage starts from the global stage's); ``None``
                = zeros.
            cfg (dict, optional): The inference options (a full ``test_cfg``, see
                :meth:`merged_cfg`): ``steps``, ``stop_thr``, ``stop_criterion``,
                ``batch_size``, ``autocast``, ``channels_last`` and ``compile`` are read from
                it. Defaults to ``self.test_cfg``.

        Returns:
            RefineOutput: probabilities, fine probabilities and U-Net calls per element.
        """
        cfg = self.test_cfg if cfg is None else cfg
        steps = self.sampler.timesteps(cfg['steps'] if steps is None else steps)
        stop = (cfg['stop_thr'] if stop_thr is None else stop_thr, cfg['stop_criterion'])
        chunk = max(1, int(cfg['batch_size']))
        coarse = coarse.to(images.device).float()
        unet, autocast = self._unet(cfg, images.device)
        outs = []
        with autocast:
            for i in range(0, images.shape[0], chunk):
                init = None if fine_prob_init is None else fine_prob_init[i:i + chunk]
                outs.append(
                    self._reverse_loop(unet, images[i:i + chunk], coarse[i:i + chunk], steps,
                                       generator, stop, init))
        return RefineOutput(*(torch.cat(f) for f in zip(*outs)))

    def _reverse_loop(self, unet, images, coarse, steps, generator, stop, fine_prob_init=None):
        b = images.shape[0]
        prob = torch.zeros_like(coarse)
        fine_prob = torch.zeros_like(coarse) if fine_prob_init is None else \
            fine_prob_init.to(coarse).clone()
        num_calls = torch.zeros(b, dtype=torch.long)
        pred_prev = torch.zeros_like(coarse, dtype=torch.bool)
        mask_t, active = coarse.clone(), torch.arange(b, device=images.device)
        for i, t in enumerate(steps):
            x = torch.cat([images[active], mask_t[active]], dim=1)
            t_batch = torch.full((len(active), ), t, dtype=torch.long, device=images.device)
            logits = unet(x, t_batch).float()
            num_calls[active.cpu()] += 1
            last = i == len(steps) - 1
            out = self.sampler.step(logits, t, coarse[active], fine_prob[active], last=last,
                                    generator=generator)
            fine_prob[active] = out.fine_prob
            if last:
                prob[active] = out.mask
                break
            pred = logits >= 0
            done = self._stopped(out, pred, pred_prev[active], coarse[active], i, *stop)
            pred_prev[active] = pred
            prob[active[done]] = logits[done].sigmoid()
            mask_t[active] = out.mask
            active = active[~done]
            if len(active) == 0:
                break
        return prob, fine_prob, num_calls

    @staticmethod
    def _stopped(out, pred: torch.Tensor, pred_prev: torch.Tensor, coarse: torch.Tensor,
                 call_idx: int, stop_thr: float, criterion: str = 'coarse') -> torch.Tensor:
        """(B,) bool: elements whose remaining work is below ``stop_thr``.

        ``'coarse'``: share of pixels still in the coarse state whose prediction disagrees
        with the coarse mask (what later steps could still change). ``'change'``: share of
        pixels whose prediction changed since the previous call (never before the second).
        """
        never = torch.zeros(pred.shape[0], dtype=torch.bool, device=pred.device)
        if stop_thr <= 0:
            return never
        if criterion not in STOP_CRITERIA:
            raise ValueError(f'stop_criterion must be one of {STOP_CRITERIA}, got {criterion!r}')
        if criterion == 'change':
            if call_idx == 0:
                return never
            share = (pred != pred_prev).flatten(1).float().mean(1)
        else:
            share = (~out.fine_map & (pred != (coarse >= 0.5))).flatten(1).float().mean(1)
        return share < stop_thr


class _TimedFirstCall:
    """Calls ``fn``; logs how long the first call took (torch.compile's warm-up)."""

    def __init__(self, fn, what: str):
        self.fn, self.what, self.first = fn, what, True

    def __call__(self, *args):
        if not self.first:
            return self.fn(*args)
        start = time.perf_counter()
        out = self.fn(*args)
        self.first = False
        _log_once(f'{self.what}: {time.perf_counter() - start:.1f} s')
        return out


_LOGGED = set()


def _log_once(msg: str, level: int = logging.INFO) -> None:
    """Log ``msg`` to mmengine's current logger, once per process."""
    if msg not in _LOGGED:
        _LOGGED.add(msg)
        print_log(msg, logger='current', level=level)
