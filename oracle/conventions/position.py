"""Sine positional encoding conventions (oracle/position.py)."""

from __future__ import annotations

from dataclasses import dataclass

from .._checks import check_scalar, fail


@dataclass(frozen=True)
class SinePEConvention:
    """Sine positional encoding (oracle/position.py).

    ``temperature``: one value, or ``(temperature_y, temperature_x)`` (DINO's
    ``PositionEmbeddingSineHW``, 20 and 20); ``normalize`` divides the cumulative position by the last
    valid one (plus ``eps``), after adding ``offset`` (0 for DETR and DINO, -0.5 for Deformable-DETR;
    mmdet's ``offset`` is applied before the division the same way), then multiplies by ``scale``.
    Upstream: detr models/position_encoding.py, Deformable-DETR models/position_encoding.py, DINO
    models/dino/position_encoding.py, mmdet models/layers/positional_encoding.py, transformers
    DetrSinePositionEmbedding / DeformableDetrSinePositionEmbedding.
    """

    num_feats: int = 128
    temperature: float | tuple[float, float] = 10000.0
    normalize: bool = True
    scale: float = 2 * 3.141592653589793
    eps: float = 1e-6
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.num_feats, int) or isinstance(self.num_feats, bool) or self.num_feats < 2 \
                or self.num_feats % 2:
            raise fail("SinePEConvention.num_feats", "an even int >= 2 (sin/cos pairs)", repr(self.num_feats))
        temps = self.temperature if isinstance(self.temperature, tuple) else (self.temperature,)
        if len(temps) not in (1, 2):
            raise fail("SinePEConvention.temperature", "a number or a (y, x) pair", repr(self.temperature))
        for t in temps:
            check_scalar("SinePEConvention.temperature", t, low=0.0, low_open=True)
        check_scalar("SinePEConvention.scale", self.scale, low=0.0, low_open=True)
        check_scalar("SinePEConvention.eps", self.eps, low=0.0)
        check_scalar("SinePEConvention.offset", self.offset)


#: DETR build_position_encoding: PositionEmbeddingSine(hidden_dim // 2, normalize=True).
PE_DETR = SinePEConvention()
#: Deformable-DETR: (y - 0.5) / (y_last + eps) * 2 pi.
PE_DEFORMABLE_DETR = SinePEConvention(offset=-0.5)
#: DINO DINO_4scale.py: pe_temperatureH = pe_temperatureW = 20.
PE_DINO = SinePEConvention(temperature=(20.0, 20.0))
