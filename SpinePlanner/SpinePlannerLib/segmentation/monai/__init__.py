"""The MONAI engine: out-of-process UNet inference and the shipped phantom-trained model."""
