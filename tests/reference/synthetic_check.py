#!/usr/bin/env python3
"""synthetic_check.py DIR - reads a synthetic PASCAL-Context set (written by
io/pascal/synthetic_pascal.c, scenes from src/data/synthetic_scene.c) the way the official loader reads the real one, and
checks what each task gets.

The readers below are ports of scale-lab/MTLoRA data/mtl_ds.py, class
PASCALContext: the same calls (PIL for images, scipy.io.loadmat for .mat
files) and the same indexing (anno[0][0][1][0], obj[1][0][0], obj[3][0][i]),
HUMAN_PART[6], the normals rule 2*v/255-1 masked to the valid context
classes. Two differences, both outside what the files must satisfy: the
edge map stops at the Laplacian of LabelMap (skimage's thin() is not
installed here), and the part index that the official code caches in
ImageSets/Parts is kept in memory (the folder must exist, so it is checked).
The valid normals classes are read from src/data/pascal_classes.c, which lists
what the official code derives from nyu_classes.json/context_classes.json.

Checks: every listed image loads with every label; shapes agree; semseg in
0..20, parts in 0..6 and only on people, saliency 0/1 = objects, normals of
unit length where valid and zero elsewhere; semseg agrees with LabelMap;
some images have people and some do not.
"""
import os
import re
import sys

import cv2
import numpy as np
import scipy.io as sio
from PIL import Image

HUMAN_PART_6 = {'hair': 1, 'head': 1, 'lear': 1, 'lebrow': 1, 'leye': 1, 'lfoot': 6,
                'lhand': 4, 'llarm': 4, 'llleg': 6, 'luarm': 3, 'luleg': 5, 'mouth': 1,
                'neck': 2, 'nose': 1, 'rear': 1, 'rebrow': 1, 'reye': 1, 'rfoot': 6,
                'rhand': 4, 'rlarm': 4, 'rlleg': 6, 'ruarm': 3, 'ruleg': 5, 'torso': 2}
CONTEXT_CATEGORY_LABELS = [0, 2, 23, 25, 31, 34, 45, 59, 65, 72, 98,
                           397, 113, 207, 258, 284, 308, 347, 368, 416, 427]
HUMAN_PARTS_CATEGORY = 15


def normals_valid_classes():
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'src', 'data', 'pascal_classes.c')
    text = open(src).read()
    body = re.search(r'normals_valid_ids\[\]\s*=\s*\{([^}]*)\}', text).group(1)
    ids = [int(x) for x in re.findall(r'\d+', body)]
    assert len(ids) == 170, 'expected 170 valid normals classes, read %d' % len(ids)
    return ids


class OfficialReader:
    """The file-reading half of the official PASCALContext dataset."""

    def __init__(self, root, splits):
        self.root = root
        self.im_ids, self.images, self.edges, self.semsegs = [], [], [], []
        self.parts, self.normals, self.sals = [], [], []
        self.normals_valid_classes = normals_valid_classes()
        for splt in splits:
            with open(os.path.join(root, 'ImageSets', 'Context', splt + '.txt'), 'r') as f:
                lines = f.read().splitlines()
            for line in lines:
                _image = os.path.join(root, 'JPEGImages', line + '.jpg')
                assert os.path.isfile(_image), _image
                self.images.append(_image)
                self.im_ids.append(line.rstrip('\n'))
                _edge = os.path.join(root, 'pascal-context', 'trainval', line + '.mat')
                assert os.path.isfile(_edge), _edge
                self.edges.append(_edge)
                _semseg = self._get_semseg_fname(line)
                assert _semseg is not None and os.path.isfile(_semseg), line
                self.semsegs.append(_semseg)
                _human_part = os.path.join(root, 'human_parts', line + '.mat')
                assert os.path.isfile(_human_part), _human_part
                self.parts.append(_human_part)
                _normal = os.path.join(root, 'normals_distill', line + '.png')
                assert os.path.isfile(_normal), _normal
                self.normals.append(_normal)
                _sal = os.path.join(root, 'sal_distill', line + '.png')
                assert os.path.isfile(_sal), _sal
                self.sals.append(_sal)
        self._preprocess_parts()
        self.has_human_parts = [1 if HUMAN_PARTS_CATEGORY in self.part_obj_dict[i] else 0
                                for i in self.im_ids]

    def _get_semseg_fname(self, fname):
        fname_voc = os.path.join(self.root, 'semseg', 'VOC12', fname + '.png')
        fname_context = os.path.join(self.root, 'semseg', 'pascal-context', fname + '.png')
        if os.path.isfile(fname_voc):
            return fname_voc
        if os.path.isfile(fname_context):
            return fname_context
        return None

    def _preprocess_parts(self, area_thres=0):
        self.part_obj_dict = {}
        for ii in range(len(self.im_ids)):
            part_mat = sio.loadmat(os.path.join(self.root, 'human_parts', '{}.mat'.format(self.im_ids[ii])))
            n_obj = len(part_mat['anno'][0][0][1][0])
            _cat_ids = []
            for jj in range(n_obj):
                obj_area = np.sum(part_mat['anno'][0][0][1][0][jj][2])
                if obj_area > area_thres:
                    _cat_ids.append(int(part_mat['anno'][0][0][1][0][jj][1]))
                else:
                    _cat_ids.append(-1)
            self.part_obj_dict[self.im_ids[ii]] = _cat_ids

    def _load_img(self, index):
        return np.array(Image.open(self.images[index]).convert('RGB')).astype(float)

    def _load_edge(self, index):
        _tmp = sio.loadmat(self.edges[index])
        _edge = cv2.Laplacian(_tmp['LabelMap'], cv2.CV_64F)
        return (np.abs(_edge) > 0).astype(float)  # official: thin(...) of this

    def _load_human_parts(self, index):
        if not self.has_human_parts[index]:
            return np.zeros((512, 512), dtype=float), np.zeros((512, 512), dtype=float)
        _part_mat = sio.loadmat(self.parts[index])['anno'][0][0][1][0]
        _inst_mask = _target = None
        for _obj_ii in range(len(_part_mat)):
            has_human = _part_mat[_obj_ii][1][0][0] == HUMAN_PARTS_CATEGORY
            has_parts = len(_part_mat[_obj_ii][3]) != 0
            if has_human and has_parts:
                if _inst_mask is None:
                    _inst_mask = _part_mat[_obj_ii][2].astype(float)
                    _target = np.zeros(_inst_mask.shape)
                else:
                    _inst_mask = np.maximum(_inst_mask, _part_mat[_obj_ii][2].astype(float))
                n_parts = len(_part_mat[_obj_ii][3][0])
                for part_i in range(n_parts):
                    cat_part = str(_part_mat[_obj_ii][3][0][part_i][0][0])
                    mask_id = HUMAN_PART_6[cat_part]
                    mask = _part_mat[_obj_ii][3][0][part_i][1].astype(bool)
                    _target[mask] = mask_id
        if _target is None:
            return np.zeros((512, 512), dtype=float), np.zeros((512, 512), dtype=float)
        return _target.astype(float), _inst_mask.astype(float)

    def _load_semseg(self, index):
        return np.array(Image.open(self.semsegs[index])).astype(float)

    def _load_normals_distilled(self, index):
        _tmp = np.array(Image.open(self.normals[index])).astype(float)
        _tmp = 2.0 * _tmp / 255.0 - 1.0
        labels = sio.loadmat(os.path.join(self.root, 'pascal-context', 'trainval', self.im_ids[index] + '.mat'))
        labels = labels['LabelMap']
        _normals = np.zeros(_tmp.shape, dtype=float)
        for x in np.unique(labels):
            if x in self.normals_valid_classes:
                _normals[labels == x, :] = _tmp[labels == x, :]
        return _normals

    def _load_sal_distilled(self, index):
        _sal = np.array(Image.open(self.sals[index])).astype(float) / 255.
        return (_sal > 0.5).astype(float)


def check_image(r, i, totals):
    name = r.im_ids[i]
    img = r._load_img(i)
    hw = img.shape[:2]
    assert img.ndim == 3 and img.shape[2] == 3, (name, img.shape)
    semseg = r._load_semseg(i)
    assert semseg.shape == hw, (name, 'semseg', semseg.shape, hw)
    assert set(np.unique(semseg)) <= set(range(21)), (name, 'semseg values', np.unique(semseg))
    label = sio.loadmat(r.edges[i])['LabelMap']
    assert label.shape == hw and label.dtype == np.uint16, (name, 'LabelMap', label.shape, label.dtype)
    assert label.min() >= 1 and label.max() <= 459, (name, 'LabelMap range')
    objects = semseg > 0
    expect = np.array(CONTEXT_CATEGORY_LABELS)[semseg.astype(int)]
    assert np.all(label[objects] == expect[objects]), (name, 'semseg disagrees with LabelMap')
    assert not np.isin(label[~objects], CONTEXT_CATEGORY_LABELS).any(), (name, 'background of an object class')

    edge = r._load_edge(i)
    assert edge.shape == hw and edge.sum() > 0, (name, 'edge')

    parts, inst = r._load_human_parts(i)
    person = semseg == HUMAN_PARTS_CATEGORY
    if r.has_human_parts[i]:
        assert parts.shape == hw and inst.shape == hw, (name, 'parts shape', parts.shape, hw)
        assert set(np.unique(parts)) <= set(range(7)), (name, 'parts values', np.unique(parts))
        assert np.array_equal(parts > 0, person), (name, 'parts are not the people')
        assert np.array_equal(inst > 0, person), (name, 'person masks are not the people')
        totals['people'] += 1
    else:
        assert not parts.any() and not person.any(), (name, 'people without a person object')
        totals['no_people'] += 1

    sal = r._load_sal_distilled(i)
    assert sal.shape == hw, (name, 'sal shape')
    assert np.array_equal(sal, objects.astype(float)), (name, 'saliency is not the objects')

    normals = r._load_normals_distilled(i)
    assert normals.shape == hw + (3,), (name, 'normals shape', normals.shape)
    valid = np.isin(label, r.normals_valid_classes)
    norm = np.linalg.norm(normals, axis=2)
    assert np.all(np.abs(norm[valid] - 1) < 0.02), (name, 'normal length', np.abs(norm[valid] - 1).max())
    assert not normals[~valid].any(), (name, 'normals kept on an invalid class')
    totals['valid'] += int(valid.sum())
    totals['invalid'] += int((~valid).sum())


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: synthetic_check.py DIR')
    root = sys.argv[1]
    assert os.path.isdir(os.path.join(root, 'ImageSets', 'Parts')), 'no ImageSets/Parts for the part index'
    train = OfficialReader(root, ['train'])
    val = OfficialReader(root, ['val'])
    assert train.im_ids and not set(train.im_ids) & set(val.im_ids), 'splits empty or overlapping'
    totals = dict(people=0, no_people=0, valid=0, invalid=0)
    for r in (train, val):
        for i in range(len(r.im_ids)):
            check_image(r, i, totals)
    n = len(train.im_ids) + len(val.im_ids)
    assert totals['people'] > 0 and totals['no_people'] > 0, totals
    assert totals['valid'] > 0 and totals['invalid'] > 0, totals
    print('synthetic_check: %d images (%d train, %d val) read as the official loader does; '
          '%d with people, %d without; normals valid on %.0f%% of pixels'
          % (n, len(train.im_ids), len(val.im_ids), totals['people'], totals['no_people'],
             100.0 * totals['valid'] / (totals['valid'] + totals['invalid'])))


if __name__ == '__main__':
    main()
