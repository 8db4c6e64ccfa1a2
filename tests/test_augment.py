"""Test-time augmentation (models/augment.py): fusion of the views, by construction."""
import pytest

torch = pytest.importorskip("torch")

from minesar.models.augment import (  # noqa: E402
    MirroredDetector,
    MirroredSegmenter,
    SegmenterViews,
    fuse,
    mirrored,
    mirrored_predict,
)


def _prediction(boxes, scores, masks=None):
    prediction = {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.tensor(scores)}
    if masks is not None:
        prediction["masks"] = torch.tensor(masks, dtype=torch.float32)
    return prediction


def _nothing():
    return {"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0)}


def test_views_that_agree_keep_the_score_and_a_lone_view_keeps_half():
    direct = _prediction([[10, 10, 30, 30], [60, 60, 80, 80]], [0.9, 0.8])
    other = _prediction([[12, 10, 32, 30]], [0.7])
    fused = fuse([direct, other])
    assert fused["scores"].tolist() == pytest.approx([0.8, 0.4])  # (0.9 + 0.7) / 2, then 0.8 / 2
    expected = (0.9 * torch.tensor([10., 10, 30, 30]) + 0.7 * torch.tensor([12., 10, 32, 30])) / 1.6
    assert torch.allclose(fused["boxes"][0], expected)
    assert fused["boxes"][1].tolist() == [60, 60, 80, 80]


def test_one_box_per_view_and_distant_boxes_stay_apart():
    # Two boxes of the same view never merge, however they overlap; nor boxes below the IoU.
    direct = _prediction([[10, 10, 30, 30], [11, 10, 31, 30]], [0.9, 0.6])
    other = _prediction([[40, 40, 50, 50]], [0.9])
    fused = fuse([direct, other])
    assert len(fused["scores"]) == 3 and fused["scores"].tolist() == pytest.approx([0.45, 0.45, 0.3])
    assert fuse([_nothing(), _prediction([[1, 1, 5, 5]], [0.8])])["scores"].tolist() == pytest.approx([0.4])
    assert len(fuse([_nothing(), _nothing()])["scores"]) == 0


def test_masks_are_fused_with_their_boxes():
    mask_a = [[[[1.0, 0.0], [1.0, 0.0]]]]
    mask_b = [[[[0.0, 0.0], [1.0, 1.0]]]]
    fused = fuse([_prediction([[0, 0, 2, 2]], [0.5], mask_a), _prediction([[0, 0, 2, 2]], [0.5], mask_b)])
    assert fused["masks"].shape == (1, 1, 2, 2)
    assert fused["masks"][0, 0].tolist() == [[0.5, 0.0], [1.0, 0.5]]


def test_masks_without_a_channel_axis_are_fused_per_basin():
    """Mask R-CNN's predict gives masks as [N, H, W]: two basins seen in both views must come out
    as two masks of H × W (the weights once broadcast across N, making [N, H, W] per basin)."""
    left = [[1.0, 0.0, 0.0, 0.0]] * 4
    right = [[0.0, 0.0, 0.0, 1.0]] * 4
    view_a = _prediction([[0, 0, 1, 4], [3, 0, 4, 4]], [0.9, 0.6], [left, right])
    view_b = _prediction([[0, 0, 1, 4], [3, 0, 4, 4]], [0.3, 0.6], [[[0.5] * 4] * 4, right])
    fused = fuse([view_a, view_b])
    assert fused["masks"].shape == (2, 4, 4)
    assert fused["scores"].tolist() == pytest.approx([0.6, 0.6])
    by_left = fused["boxes"][:, 0].argsort()
    assert fused["masks"][by_left[0], 0].tolist() == pytest.approx([(0.9 + 0.15) / 1.2, 0.125, 0.125, 0.125])
    assert fused["masks"][by_left[1]].tolist() == right


def test_a_mirror_equivariant_detector_answers_as_without_mirror():
    """A detector that finds the bright square wherever it is: both views agree, so mirroring
    changes nothing; one that only fires on the left half loses half its score for it."""
    images = torch.zeros((1, 2, 64, 96))
    images[0, :, 10:20, 5:25] = 1.0

    def bright_square(batch):
        found = []
        for image in batch:
            rows, cols = torch.where(image[0] > 0)
            found.append(_prediction([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], [0.9]))
        return found

    fused = mirrored_predict(bright_square, images)[0]
    assert fused["boxes"][0].tolist() == [5, 10, 25, 20] and fused["scores"].tolist() == pytest.approx([0.9])

    def left_only(batch):
        return [p if p["boxes"][0, 2] <= 48 else _nothing() for p in bright_square(batch)]

    fused = mirrored_predict(left_only, images)[0]
    assert fused["scores"].tolist() == pytest.approx([0.45])


class _LeftHalfSegmenter:
    """Probability 1 on a tile's left half, 0 on its right half, whatever the image."""
    task, input_kind = "segmentation", "phase"

    def predict(self, images):
        probability = torch.zeros(images.shape[0], *images.shape[-2:])
        probability[..., : images.shape[-1] // 2] = 1.0
        return probability


def test_a_mirrored_segmenter_averages_the_two_views():
    images = torch.zeros((2, 2, 8, 10))
    seen = mirrored(_LeftHalfSegmenter())
    assert isinstance(seen, MirroredSegmenter) and seen.input_kind == "phase" and seen.task == "segmentation"
    # Each half is believed by one view only: half the probability everywhere.
    assert torch.allclose(seen.predict(images), torch.full((2, 8, 10), 0.5))


def test_mirrored_picks_the_view_by_task():
    class Detector:
        task = "detection"

    assert isinstance(mirrored(Detector()), MirroredDetector)
    assert isinstance(mirrored(_LeftHalfSegmenter()), MirroredSegmenter)


class _TopLeftSegmenter:
    """Probability 1 on a tile's top-left quadrant, 0 elsewhere, whatever the image; with cores, the
    core map is the same quadrant at 0.5."""
    task, input_kind, cores = "segmentation", "phase", True

    def predict(self, images):
        probability = torch.zeros(images.shape[0], *images.shape[-2:])
        probability[..., : images.shape[-2] // 2, : images.shape[-1] // 2] = 1.0
        return probability

    def predict_maps(self, images):
        extent = self.predict(images)
        return torch.stack([extent, extent / 2], dim=1)


class _PixelwiseSegmenter:
    """A probability that depends on each pixel's own value only: every view must give it back unmoved."""
    task, input_kind = "segmentation", "phase"

    def predict(self, images):
        return torch.sigmoid(3 * images[:, 0] - images[:, 1])

    def predict_maps(self, images):
        return torch.stack([self.predict(images), torch.sigmoid(images[:, 1])], dim=1)


@pytest.mark.parametrize("mirror, turns, views", [(True, False, 2), (False, True, 4), (True, True, 8)])
def test_each_view_is_turned_back_into_the_tiles_frame(mirror, turns, views):
    seen = SegmenterViews(_PixelwiseSegmenter(), mirror=mirror, turns=turns)
    assert len(seen.views) == views
    images = torch.randn((3, 2, 9, 14))  # not square: a quarter turn changes the shape
    assert torch.allclose(seen.predict(images), _PixelwiseSegmenter().predict(images), atol=1e-6)
    assert torch.allclose(seen.predict_maps(images), _PixelwiseSegmenter().predict_maps(images), atol=1e-6)


def test_eight_views_share_a_lone_quadrant_out_evenly():
    seen = SegmenterViews(_TopLeftSegmenter(), mirror=True, turns=True)
    assert seen.cores and seen.task == "segmentation"
    images = torch.zeros((2, 2, 8, 8))
    # Each quadrant is the network's top-left in two of the eight views.
    assert torch.allclose(seen.predict(images), torch.full((2, 8, 8), 0.25))
    maps = seen.predict_maps(images)
    assert maps.shape == (2, 2, 8, 8) and torch.allclose(maps[:, 1], torch.full((2, 8, 8), 0.125))
    turned = SegmenterViews(_TopLeftSegmenter(), mirror=False, turns=True).predict(images)
    assert torch.allclose(turned, torch.full((2, 8, 8), 0.25))
    mirrored_only = MirroredSegmenter(_TopLeftSegmenter()).predict(images)[0]
    assert torch.allclose(mirrored_only[:4], torch.full((4, 8), 0.5)) and not mirrored_only[4:].any()
