"""MiT attention through `scaled_dot_product_attention`, with smp's parameters and key names.

segmentation-models-pytorch's MiT writes attention by hand (`softmax(q @ k.T * scale) @ v`), which
materialises the attention matrix. `SdpaAttention` computes the same function with torch's fused
kernel (flash / memory-efficient on CUDA, flash on the CPU) and keeps smp's submodules (`q`, `kv`,
`proj`, `sr`, `norm`), so state_dicts and NVlabs' `mit_bX.pth` files are unchanged.
"""

from __future__ import annotations

import segmentation_models_pytorch.encoders.mix_transformer as smp_mit
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import flop_registry

# torch's FlopCounterMode knows the CUDA flash kernel but not its CPU twin, so GFLOPs counted on
# the CPU (models/sizes.py) would leave attention out; count both alike.
_aten = torch.ops.aten
flop_registry.setdefault(
    _aten._scaled_dot_product_flash_attention_for_cpu,
    flop_registry[_aten._scaled_dot_product_flash_attention],
)
flop_registry.setdefault(
    _aten._scaled_dot_product_flash_attention_for_cpu_backward,
    flop_registry[_aten._scaled_dot_product_flash_attention_backward],
)


class SdpaAttention(nn.Module):
    """smp's MiT `Attention` (spatial-reduction attention) computed by the fused SDPA kernel."""

    def __init__(self, manual: smp_mit.Attention) -> None:
        """Take over `manual`'s submodules and settings (the parameters are shared, not copied)."""
        super().__init__()
        self.dim = manual.dim
        self.num_heads = manual.num_heads
        self.scale = manual.scale
        self.sr_ratio = manual.sr_ratio
        # Registered in smp's order, so that state_dict keys come out in the same order.
        self.q = manual.q
        self.kv = manual.kv
        self.attn_drop = manual.attn_drop
        self.proj = manual.proj
        self.proj_drop = manual.proj_drop
        self.sr = manual.sr
        self.norm = manual.norm

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        batch_size, tokens, channels = x.shape
        head_dim = channels // self.num_heads
        q = self.q(x).reshape(batch_size, tokens, self.num_heads, head_dim).transpose(1, 2)
        if self.sr_ratio > 1:
            # Keys and values come from the map shrunk by a strided convolution.
            x = x.transpose(1, 2).reshape(batch_size, channels, height, width)
            x = self.norm(self.sr(x).flatten(2).transpose(1, 2))
        kv = self.kv(x).reshape(batch_size, -1, 2, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(
            q,
            kv[0],
            kv[1],
            dropout_p=self.attn_drop.p if self.training else 0.0,
            scale=self.scale,
        )
        x = x.transpose(1, 2).reshape(batch_size, tokens, channels)
        return self.proj_drop(self.proj(x))


def use_sdpa_attention(encoder: nn.Module) -> nn.Module:
    """Replace every smp MiT `Attention` in `encoder` by an `SdpaAttention` in place; return it."""
    manual_attentions = [
        (name, module)
        for name, module in encoder.named_modules()
        if isinstance(module, smp_mit.Attention)
    ]
    if not manual_attentions:
        raise ValueError(
            f"{type(encoder).__name__} has no segmentation-models-pytorch MiT Attention modules; "
            "use_sdpa_attention applies to smp's MixVisionTransformer (mit_b0..mit_b5) only."
        )
    for name, module in manual_attentions:
        encoder.set_submodule(name, SdpaAttention(module))
    return encoder
