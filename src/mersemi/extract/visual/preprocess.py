"""The eval preprocessing of CLIP images, one for every checkpoint format."""

from open_clip.transform import PreprocessCfg, image_transform_v2


def clip_preprocess(image_size: int, mean, std):
    """The eval preprocessing of OpenAI's CLIP (and of open_clip and HF's CLIPImageProcessor
    for it): bicubic resize of the short side, centre crop, mean/std normalisation. One
    function for every checkpoint format, so the formats differ only in the network."""
    cfg = PreprocessCfg(size=image_size, mean=tuple(mean), std=tuple(std))
    return image_transform_v2(cfg, is_train=False)
