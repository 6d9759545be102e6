"""The reference and the fixtures against independent third-party implementations (torchvision, transformers,
ultralytics, mmdet), and the library adapters' own checks."""
