"""DETR-family criteria: the set criterion (DETR/YOLOS, Deformable-DETR, DINO with denoising) and
mmdet's DETR head losses. Each composes the primitives of oracle.losses, oracle.boxes and
oracle.assign.hungarian; no formula is written here twice."""

from .denoising import CdnDraws, CdnQueries, cdn_group_count, draw_cdn, prepare_for_cdn, split_denoising
from .mmdet_detr_head import MMDetDETRHeadLoss, assign_result
from .set_criterion import SetCriterion, SetCriterionConfig, num_boxes

__all__ = ["CdnDraws", "CdnQueries", "MMDetDETRHeadLoss", "SetCriterion", "SetCriterionConfig", "assign_result",
           "cdn_group_count", "draw_cdn", "num_boxes", "prepare_for_cdn", "split_denoising"]
