"""Training behaviour of the paper recipes: two-stage freezing, mixed supervision, scene labels.

They run the framework's real module (freeze, stages, supervision flags) on
the registry's tiny variants with hand-built batches, or batches of a
generated NYU tree.
"""

import warnings

import pytest
import torch
from test_data_trees import nyu_tree

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.module import MultiTaskModule
from training.nets import get_spec

STEPS = 2
LR = 1e-2


def batch_for(net_name, has_depth, has_labels, classes=40, n=2, seed=0):
    spec = get_spec(net_name)
    height, width = spec.tiny.get('input_size', spec.test_size)
    generator = torch.Generator().manual_seed(seed)
    depth = 0.5 + 5.0 * torch.rand(n, 1, height, width, generator=generator)
    return {
        'image': torch.randn(n, 3, height, width, generator=generator),
        'depth': depth if has_depth else torch.zeros_like(depth),
        'depth_valid': torch.full_like(depth, has_depth, dtype=torch.bool),
        'labels': torch.randint(0, classes, (n, height, width), generator=generator)
        if has_labels else torch.full((n, height, width), 255),
        'has_depth': torch.full((n,), has_depth), 'has_labels': torch.full((n,), has_labels),
    }


def module_for(net_name, **kwargs):
    torch.manual_seed(0)
    return MultiTaskModule(net=net_name, net_args=dict(get_spec(net_name).tiny), **kwargs)


def train_steps(module, batch, steps=STEPS):
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=LR)
    module.train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # self.log without a Trainer
        for step in range(steps):
            optimizer.zero_grad()
            module.training_step(batch, step).backward()
            optimizer.step()


def snapshot(module, prefixes):
    return {name: value.clone() for name, value in module.net.state_dict().items()
            if name.startswith(prefixes)}


@pytest.fixture(scope='module')
def refine_stage():
    """depth_gradient's stage two after a few steps: state before and after."""
    module = module_for('depth_gradient', stage='refine')
    before = snapshot(module, ('coarse.', 'scale2.', 'scale3.'))
    train_steps(module, batch_for('depth_gradient', True, True))
    return before, snapshot(module, ('coarse.', 'scale2.', 'scale3.'))


def test_stage_two_leaves_shared_scales_bit_for_bit_unchanged(refine_stage):
    before, after = refine_stage
    frozen = [name for name in before if name.startswith(('coarse.', 'scale2.'))]
    assert frozen
    assert all(torch.equal(before[name], after[name]) for name in frozen)


def test_stage_two_trains_the_refinement_scale(refine_stage):
    before, after = refine_stage
    trained = [name for name in before if name.startswith('scale3.')]
    assert trained
    assert all(not torch.equal(before[name], after[name]) for name in trained)


def test_stage_one_supervises_scale_two_heads_only():
    module = module_for('depth_gradient', stage='coarse')
    assert set(module.loss.heads) == {'depth_scale2', 'gradients'}
    assert not any(p.requires_grad for n, p in module.net.named_parameters()
                   if n.startswith('scale3.'))


def gradients_after_one_step(has_depth, has_labels):
    module = module_for('semantic_booster')
    module.train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        module.training_step(batch_for('semantic_booster', has_depth, has_labels), 0).backward()
    return {name: p.grad for name, p in module.net.named_parameters()}


def has_gradient(grad):
    return grad is not None and bool(grad.abs().sum() > 0)


def test_depth_only_batch_gives_semantic_branch_no_gradient():
    grads = gradients_after_one_step(has_depth=True, has_labels=False)
    assert not any(has_gradient(g) for n, g in grads.items() if n.startswith('semantic.'))
    assert all(has_gradient(g) for n, g in grads.items() if n.startswith('depth.'))


def test_labels_only_batch_gives_depth_branch_no_gradient():
    grads = gradients_after_one_step(has_depth=False, has_labels=True)
    assert not any(has_gradient(g) for n, g in grads.items() if n.startswith('depth.'))
    assert all(has_gradient(g) for n, g in grads.items() if n.startswith('semantic.'))


def test_fully_labelled_batch_shares_through_the_lateral_units():
    # Without stops, depth's loss reaches the semantic up-convolutions via the LSUs.
    module = module_for('semantic_booster', loss={'heads': ['depth']})
    module.train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        module.training_step(batch_for('semantic_booster', True, True), 0).backward()
    assert has_gradient(module.net.semantic.up[0][0].weight.grad)


def nyu_scene_batch():
    """Both train frames of the generated NYU tree at dense_transfer's test size, scenes included."""
    from training.data.nyu import NyuDataset

    data = NyuDataset(nyu_tree(), 'trainval', resize=get_spec('dense_transfer').test_size)
    return torch.utils.data.default_collate([data[i] for i in range(len(data))])


def dense_transfer_gradients(batch):
    module = module_for('dense_transfer')
    module.train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        module.training_step(batch, 0).backward()
    return {name: p.grad for name, p in module.net.named_parameters()}


def test_dense_transfer_trains_its_scene_head_on_nyu_scene_types():
    batch = nyu_scene_batch()
    assert batch['scene'].shape == (2,) and bool((batch['scene'] != IGNORE_INDEX).all())
    grads = dense_transfer_gradients(batch)
    head = [name for name in grads if name.startswith('classifier.')]
    assert head and all(has_gradient(grads[name]) for name in head)


def test_dense_transfer_without_scene_labels_leaves_its_scene_head_alone():
    batch = nyu_scene_batch()
    batch['scene'] = torch.full_like(batch['scene'], IGNORE_INDEX)  # what KITTI or Cityscapes give
    grads = dense_transfer_gradients(batch)
    assert not any(has_gradient(g) for n, g in grads.items() if n.startswith('classifier.'))
    assert has_gradient(grads['conv3.weight'])  # depth still trains


def test_depth_gradient_predicts_other_sizes_through_its_input_size():
    # Scale 1 is fully connected, so a 64x64 network resizes a 128x128 image to 64x64
    # and its outputs back; per-pixel gradients shrink by 63 / 127 (aligned corners).
    torch.manual_seed(0)
    net = get_spec('depth_gradient').build(**get_spec('depth_gradient').tiny).eval()
    image = torch.randn(1, 3, 128, 128)
    small_image = torch.nn.functional.interpolate(image, size=(64, 64), mode='bilinear',
                                                  align_corners=True)
    with torch.no_grad():
        large, small = net(image), net(small_image)
    assert large['depth'].shape == (1, 1, 128, 128)
    assert large['gradients'].shape == (1, 2, 128, 128)
    ratio = large['gradients'].abs().mean() / small['gradients'].abs().mean()
    assert ratio.item() == pytest.approx(63 / 127, rel=0.01)


def test_mixed_sources_concatenate_their_parts():
    from training.data.mixed import MixedSources

    mixed = MixedSources('', 'train', sources=[
        {'dataset': 'random', 'args': {'frames': 3, 'size': [8, 8]}},
        {'dataset': 'random', 'split': 'val', 'args': {'frames': 2, 'size': [8, 8]}}])
    assert len(mixed) == 5
    assert mixed[4]['image'].shape == (3, 8, 8)


def test_mixed_sources_name_a_bad_source():
    from training.data.mixed import MixedSources

    with pytest.raises(ValueError, match=r'sources\[0\]'):
        MixedSources(sources=[{'root': 'data/kitti'}])
