"""Constants of loss reduction that libraries add to their normalisers."""

#: ``torch.finfo(torch.float32).eps``: mmdet's ``weight_reduce_loss`` adds it to ``avg_factor``
#: even for float64 losses (mmdet/models/losses/utils.py).
FLT_EPS = 1.1920928955078125e-07
