"""Golden cases of the box formats, areas and overlaps (``boxes.*``; conformance/test_boxes.py)."""

from __future__ import annotations


from oracle import boxes as box_ops

from ..case import Case, f64, rand_cxcywh, rand_xyxy


def cases() -> list[Case]:
    cases = []
    fmts = ("xyxy", "cxcywh", "xywh")
    for i, (src, dst) in enumerate((s, d) for s in fmts for d in fmts if s != d):
        cases.append(Case(f"boxes.convert/{src}-to-{dst}", "boxes.convert", "detr", {"src": src, "dst": dst}, 100 + i,
                          ("random",), lambda rng, s=src: {"boxes": box_ops.convert(rand_xyxy(rng, 6), "xyxy", s)}))
    cases.append(Case("boxes.convert/edge-zero-area-and-empty-batch", "boxes.convert", "detr",
                      {"src": "cxcywh", "dst": "xyxy"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"boxes": f64([[0.5, 0.5, 0.0, 0.0], [0.2, 0.3, 0.0, 0.4]])}))
    cases.append(Case("boxes.area/random-xyxy", "boxes.area", "detr", {"fmt": "xyxy"}, 110, ("random",),
                      lambda rng: {"boxes": rand_xyxy(rng, 8, scale=640.0)}))
    cases.append(Case("boxes.area/edge-zero-area", "boxes.area", "detr", {"fmt": "xyxy"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"boxes": f64([[1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 5.0, 2.0], [0.0, 0.0, 0.0, 0.0]])}))

    profiles = {"detr": "box_iou", "dino": "box_iou", "mmdet": "box_iou", "torchvision": "box_iou",
                "ultralytics": "box_iou"}
    ops_by_profile = {"detr": ("iou", "giou"), "dino": ("iou", "giou"), "mmdet": ("iou", "iof", "giou"),
                      "torchvision": ("iou", "giou", "diou", "ciou"), "ultralytics": ("iou", "giou", "diou", "ciou")}
    seed = 200
    for profile, which in profiles.items():
        for op in ops_by_profile[profile]:
            seed += 1
            cases.append(Case(f"boxes.overlap/{op}-{profile}-pairwise", "boxes.overlap", profile,
                              {"op": op, "aligned": False, "fmt": "xyxy", "convention": which}, seed, ("random",),
                              lambda rng: {"boxes1": rand_xyxy(rng, 5), "boxes2": rand_xyxy(rng, 4)}))
    for op in ("giou", "diou", "ciou"):
        seed += 1
        cases.append(Case(f"boxes.overlap/{op}-torchvision-loss-aligned-pixels", "boxes.overlap", "torchvision",
                          {"op": op, "aligned": True, "fmt": "xyxy", "convention": "iou_loss"}, seed, ("random",),
                          lambda rng: {"boxes1": rand_xyxy(rng, 7, scale=800.0),
                                       "boxes2": rand_xyxy(rng, 7, scale=800.0)}))
    cases.append(Case("boxes.overlap/ciou-mmdet-loss-aligned", "boxes.overlap", "mmdet",
                      {"op": "ciou", "aligned": True, "fmt": "xyxy", "convention": "IOU_MMDET_CIOU_LOSS"}, 230,
                      ("random",), lambda rng: {"boxes1": rand_xyxy(rng, 6), "boxes2": rand_xyxy(rng, 6)}))
    cases.append(Case("boxes.overlap/giou-detr-cxcywh-realistic", "boxes.overlap", "detr",
                      {"op": "giou", "aligned": False, "fmt": "cxcywh", "convention": "box_iou"}, 231,
                      ("random", "size:realistic"),
                      lambda rng: {"boxes1": rand_cxcywh(rng, 300), "boxes2": rand_cxcywh(rng, 50)}))

    identical = lambda rng: {"boxes1": f64([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.4, 0.9]]),  # noqa: E731
                             "boxes2": f64([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.4, 0.9]])}
    for op in ("iou", "giou", "diou", "ciou"):
        cases.append(Case(f"boxes.overlap/edge-identical-{op}", "boxes.overlap", "torchvision",
                          {"op": op, "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                          ("edge:identical-boxes",), identical))
    zero_area = lambda rng: {"boxes1": f64([[0.3, 0.3, 0.3, 0.3], [0.1, 0.1, 0.4, 0.1]]),  # noqa: E731
                             "boxes2": f64([[0.3, 0.3, 0.3, 0.3], [0.2, 0.0, 0.5, 0.5]])}
    for profile in ("dino", "mmdet", "ultralytics"):
        cases.append(Case(f"boxes.overlap/edge-zero-area-giou-{profile}", "boxes.overlap", profile,
                          {"op": "giou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                          ("edge:zero-area-boxes",), zero_area))
    cases.append(Case("boxes.overlap/edge-ciou-at-iou-threshold-mmdet", "boxes.overlap", "mmdet",
                      {"op": "ciou", "aligned": True, "fmt": "xyxy", "convention": "IOU_MMDET_CIOU_LOSS"}, 0,
                      ("edge:iou-at-threshold",),
                      lambda rng: {"boxes1": f64([[0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 2.0]]),
                                   "boxes2": f64([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.25, 2.0]])}))
    cases.append(Case("boxes.overlap/edge-disjoint-and-nested", "boxes.overlap", "detr",
                      {"op": "giou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                      ("edge:disjoint-boxes", "edge:nested-boxes"),
                      lambda rng: {"boxes1": f64([[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.8, 0.8]]),
                                   "boxes2": f64([[0.9, 0.9, 1.0, 1.0], [0.3, 0.3, 0.4, 0.5]])}))
    return cases
