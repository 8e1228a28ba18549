"""Training augmentation: the fast 3x3 filter equals max-pooling, strokes get thicker and thinner, affine keeps ink."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from digitsum_edge import mnist
from digitsum_edge.train.augment import max_filter3, random_affine, random_stroke_width


def test_max_filter_equals_max_pool_with_stride_one() -> None:
    images = torch.randn(6, 2, 28, 28)
    assert torch.equal(max_filter3(images), F.max_pool2d(images, 3, stride=1, padding=1))
    assert torch.equal(-max_filter3(-images), -F.max_pool2d(-images, 3, stride=1, padding=1))


def test_stroke_width_thickens_some_digits_and_thins_others() -> None:
    images = torch.from_numpy(mnist.load("test").images[:64, None]).float()
    out = random_stroke_width(images, torch.Generator().manual_seed(0), strength=1.0)
    ink_before, ink_after = images.sum((1, 2, 3)), out.sum((1, 2, 3))
    assert (ink_after > ink_before * 1.05).any() and (ink_after < ink_before * 0.95).any()
    assert out.min() >= 0 and out.max() <= 255  # a blend of grey dilation and erosion stays in range
    same = random_stroke_width(images, torch.Generator().manual_seed(0), strength=1.0)
    assert torch.equal(out, same)  # the generator decides everything
    assert torch.equal(random_stroke_width(images, torch.Generator(), strength=0.0), images)


def test_affine_moves_pixels_but_keeps_the_digit_on_the_canvas() -> None:
    images = torch.from_numpy(mnist.load("test").images[:64, None]).float()
    out = random_affine(images, torch.Generator().manual_seed(1))
    assert not torch.equal(out, images)
    ratio = out.sum((1, 2, 3)) / images.sum((1, 2, 3))
    assert ((ratio > 0.75) & (ratio < 1.3)).all()  # scale 0.9-1.1 changes the ink area by at most ~20 %


def test_elastic_warp_is_smooth_small_and_off_by_default() -> None:
    images = torch.from_numpy(mnist.load("test").images[:64, None]).float()
    plain = random_affine(images, torch.Generator().manual_seed(2))
    assert torch.equal(plain, random_affine(images, torch.Generator().manual_seed(2), elastic_px=0.0))
    warped = random_affine(images, torch.Generator().manual_seed(2), elastic_px=1.0)
    assert not torch.equal(warped, plain)
    moved = (warped - plain).abs().sum((1, 2, 3)) / plain.sum((1, 2, 3))
    assert (moved > 0.02).all() and (moved < 1.0).all()  # every digit wobbles, none is torn apart
    ratio = warped.sum((1, 2, 3)) / plain.sum((1, 2, 3))
    assert ((ratio > 0.8) & (ratio < 1.25)).all()


def test_low_resolution_sample_is_the_whole_digit_at_fewer_pixels() -> None:
    images = torch.from_numpy(mnist.load("test").images[:64, None]).float()
    full = random_affine(images, torch.Generator().manual_seed(3))
    small = random_affine(images, torch.Generator().manual_seed(3), size=20)
    assert small.shape == (64, 1, 20, 20)
    ratio = small.sum((1, 2, 3)) / full.sum((1, 2, 3))  # the same digit on a 20/28 grid: (20/28)^2 of the ink
    assert ((ratio > 0.85 * (20 / 28) ** 2) & (ratio < 1.15 * (20 / 28) ** 2)).all()

    def centre(x: torch.Tensor) -> torch.Tensor:  # (N, 2) ink centroid as a fraction of the side
        side = x.shape[-1]
        coords = (torch.arange(side, dtype=x.dtype) + 0.5) / side
        mass = x.sum((1, 2, 3))
        return torch.stack([(x.sum((1, 3)) * coords).sum(-1) / mass, (x.sum((1, 2)) * coords).sum(-1) / mass], 1)

    assert (centre(small) - centre(full)).abs().max() < 1 / 28  # not a crop: the digit keeps its place
