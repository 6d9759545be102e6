"""Criteria: the DETR-family set criterion (DETR/YOLOS, Deformable-DETR, DINO with denoising), mmdet's
DETR head losses, mmdet's AnchorHead loss and the YOLOv8 detection and segmentation losses. Each
composes the primitives of oracle.losses, oracle.boxes, oracle.coders and oracle.assign; no formula is
written here twice."""

from .anchor_head import ANCHOR_HEAD_MMDET, RETINANET_HEAD_MMDET, AnchorHeadConfig, AnchorHeadLoss, anchor_head_loss
from .denoising import CdnDraws, CdnQueries, cdn_group_count, draw_cdn, prepare_for_cdn, split_denoising
from .mmdet_detr_head import MMDetDETRHeadLoss, assign_result
from .set_criterion import SetCriterion, SetCriterionConfig, num_boxes
from .yolov8 import (YOLOV8_ULTRALYTICS, YOLOV8_ULTRALYTICS_LEGACY, YOLOv8LossConfig, YOLOv8LossResult,
                     yolov8_detection_loss, yolov8_segmentation_loss)

__all__ = ["ANCHOR_HEAD_MMDET", "AnchorHeadConfig", "AnchorHeadLoss", "CdnDraws", "CdnQueries", "MMDetDETRHeadLoss",
           "RETINANET_HEAD_MMDET", "SetCriterion", "SetCriterionConfig", "YOLOV8_ULTRALYTICS",
           "YOLOV8_ULTRALYTICS_LEGACY", "YOLOv8LossConfig", "YOLOv8LossResult", "anchor_head_loss", "assign_result",
           "cdn_group_count", "draw_cdn", "num_boxes", "prepare_for_cdn", "split_denoising", "yolov8_detection_loss",
           "yolov8_segmentation_loss"]
