"""The extended face material for bench/redact_detectors.py: 1080p frames (BGR) of what a bodycam sees
and the first material lacked, made from faces and pictures that ship inside scikit-image (no download).

Faces: the astronaut's head (data.astronaut, colour) and the 100 LFW faces (data.lfw_subset, 25x25 grey,
upscaled only up to 100 px: different people). Background: a 1080p street-like collage of scikit-image's photos (coffee,
rocket, the cat Chelsea, brick, grass, gravel), so that false positives have texture, objects and an
animal's face to fire on. Each set is 10 frames, each frame's faces at other places (seeded: the same
material every run):

Sizes are the face's own (hairline to chin), and a face counts as found when a detection's centre lies
in the face itself (not in the hair or shoulders of its photo).

- turned: faces of 60-160 px turned 30, 45 and 60 degrees to either side; a 2-D photo cannot turn, so the
  turn is imitated by a perspective warp (the far side narrowed and shortened, as a head's far half is
  seen) plus a tilt of up to 15 degrees;
- small: faces 40, 50 and 60 px high in 1080p (astronaut and LFW);
- covered: a cap (a dark crown and brim down to the eyebrows), a hand (a skin-coloured ellipse over the
  mouth and a cheek), or a scarf over the lower third (60-160 px);
- low light: the frame's light scaled by 0.6, then gamma 1.8-2.6 (a white face ends near 50 of 255), and
  sensor noise;
- motion blur: a horizontal or diagonal streak of 6-18 px (the officer walking, the person running);
- several: 8 faces at once, 40-200 px;
- no faces: the collage alone (only false positives can happen).
"""

from __future__ import annotations

import math

import numpy as np

Frames = list[np.ndarray]
Boxes = list[list[tuple[int, int, int, int]]]
WIDTH, HEIGHT = 1920, 1080
FRAMES = 10


# Where the face itself (hairline to chin, ear to ear) lies in the astronaut crop, as fractions of the crop:
# measured with CenterFace on the whole photo (x 182-270, y 58-178 of 512x512; the crop starts at 150, 30).
ASTRONAUT_FACE = (32 / 180, 28 / 200, 88 / 180, 120 / 200)


def _faces():
    import cv2
    from skimage import data

    head = cv2.cvtColor(data.astronaut()[30:230, 150:330], cv2.COLOR_RGB2BGR)  # 180x200, the face centred
    lfw = [cv2.cvtColor((f * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR) for f in data.lfw_subset()[:100]]
    return head, lfw


def face_of(head, lfw, k: int, face_h: int):
    """A face `face_h` pixels high (hairline to chin) and its face box inside the returned image: the
    astronaut with her hair and shoulders, or (for faces up to 100 px: 25 px photos stretched further
    are a blur, not a face) LFW face k, whose photo is the face itself."""
    if k % 2 == 0 or face_h > 100:
        fx, fy, fw, fh = ASTRONAUT_FACE
        img = _resize(head, round(face_h / fh))
        h, w = img.shape[:2]
        return img, (round(fx * w), round(fy * h), round(fw * w), round(fh * h))
    img = _resize(lfw[(k * 13) % len(lfw)], face_h)
    return img, (0, 0, img.shape[1], img.shape[0])


def _collage(rng) -> np.ndarray:
    import cv2
    from skimage import data

    tiles = [data.coffee(), data.rocket(), data.chelsea(), np.stack([data.brick()] * 3, -1),
             np.stack([data.grass()] * 3, -1), np.stack([data.gravel()] * 3, -1)]
    out = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    order = rng.permutation(len(tiles))
    for i, k in enumerate(order):
        x0, y0 = (i % 3) * WIDTH // 3, (i // 3) * HEIGHT // 2
        tile = cv2.resize(tiles[k], (WIDTH // 3, HEIGHT // 2), interpolation=cv2.INTER_AREA)
        out[y0:y0 + HEIGHT // 2, x0:x0 + WIDTH // 3] = cv2.cvtColor(tile, cv2.COLOR_RGB2BGR)
    return out


def _resize(face, height: int):
    import cv2

    h, w = face.shape[:2]
    return cv2.resize(face, (max(2, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def _paste(img, face, x: int, y: int, box) -> tuple[int, int, int, int]:
    h, w = face.shape[:2]
    img[y:y + h, x:x + w] = face
    return x + box[0], y + box[1], box[2], box[3]


def _places(rng, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Top-left corners for faces of (w, h) that do not overlap (a face's truth box holds one face)."""
    taken: list[tuple[int, int, int, int]] = []
    out = []
    for w, h in sizes:
        for _ in range(200):
            x, y = int(rng.integers(10, WIDTH - w - 10)), int(rng.integers(10, HEIGHT - h - 10))
            if all(x + w + 20 < a or a + c + 20 < x or y + h + 20 < b or b + d + 20 < y for a, b, c, d in taken):
                break
        taken.append((x, y, w, h))
        out.append((x, y))
    return out


def turned(photo: tuple, degrees: float, tilt: float):
    """The face as if turned by `degrees` (sign: which way): a perspective warp narrowing and shortening
    its far side, then a tilt in the picture's plane; the face box narrowed alike. Outside the warped face:
    the face's own border colour."""
    import cv2

    face, box = photo
    h, w = face.shape[:2]
    c = math.cos(math.radians(abs(degrees)))
    far = (1 - c) * 0.25 * h  # the far side looks shorter
    squeeze = 0.55 + 0.45 * c
    nw = max(4, round(w * squeeze))
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    if degrees > 0:  # the right side is further away
        dst = np.array([[0, 0], [nw, far], [nw, h - far], [0, h]], dtype=np.float32)
    else:
        dst = np.array([[0, far], [nw, 0], [nw, h], [0, h - far]], dtype=np.float32)
    warped = cv2.warpPerspective(face, cv2.getPerspectiveTransform(src, dst), (nw, h),
                                 borderMode=cv2.BORDER_REPLICATE)
    rot = cv2.getRotationMatrix2D((nw / 2, h / 2), tilt, 1.0)
    x, y, bw, bh = box
    return (cv2.warpAffine(warped, rot, (nw, h), borderMode=cv2.BORDER_REPLICATE),
            (round(x * squeeze), y, max(2, round(bw * squeeze)), bh))


def covered(photo: tuple, how: str):
    """The face with a cap (a dark crown and brim down to the eyebrows), a hand over the mouth and a
    cheek, or a scarf over the lower third of the face."""
    import cv2

    face, box = photo
    out = face.copy()
    x, y, w, h = box
    if how == "cap":
        cv2.rectangle(out, (0, 0), (out.shape[1], y + round(h * 0.3)), (40, 45, 50), -1)
        cv2.ellipse(out, (x + w // 2, y + round(h * 0.3)), (round(w * 0.6), round(h * 0.06)), 0, 0, 360,
                    (30, 32, 36), -1)
    elif how == "hand":
        cv2.ellipse(out, (x + round(w * 0.4), y + round(h * 0.8)), (round(w * 0.35), round(h * 0.2)), -20, 0, 360,
                    (120, 150, 200), -1)
    else:
        cv2.rectangle(out, (0, y + round(h * 0.68)), (out.shape[1], out.shape[0]), (60, 30, 110), -1)
    return out, box


def extended() -> dict[str, tuple[Frames, Boxes]]:
    """name -> (1080p BGR frames, the face boxes in each: the faces themselves, not their photos)."""
    import cv2

    rng = np.random.default_rng(23)
    head, lfw = _faces()
    sets: dict[str, tuple[Frames, Boxes]] = {}

    def make(name: str, faces_for_frame, post=None) -> None:
        frames: Frames = []
        truth: Boxes = []
        for n in range(FRAMES):
            img = _collage(rng)
            faces = faces_for_frame(n)
            places = _places(rng, [f.shape[1::-1] for f, _ in faces])
            truth.append([_paste(img, f, x, y, box) for (f, box), (x, y) in zip(faces, places)])
            frames.append(post(img, n) if post else img)
        sets[name] = (frames, truth)

    def face(n: int, i: int, face_h: int):
        return face_of(head, lfw, n + i, face_h)

    make("turned 30-60 degrees (6 faces, 60-160 px)", lambda n: [
        turned(face(n, i, 60 + 20 * i), side * angle, float(rng.uniform(-15, 15)))
        for i, (side, angle) in enumerate((s, a) for a in (30, 45, 60) for s in (1, -1))])
    make("small 40-60 px (6 faces)", lambda n: [face(n, i, (40, 50, 60)[i % 3]) for i in range(6)])
    make("partly covered: cap, hand, scarf (6 faces, 60-160 px)", lambda n: [
        covered(face(n, i, 60 + 20 * i), ("cap", "hand", "scarf")[i % 3]) for i in range(6)])

    def dark(img, n):
        gamma = 1.8 + (n % 3) * 0.4
        lit = (255 * (0.6 * img / 255.0) ** gamma).astype(np.float32)
        return np.clip(lit + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    make("low light: exposure 0.6, gamma 1.8-2.6, noise (4 faces, 60-150 px)",
         lambda n: [face(n, i, (60, 90, 120, 150)[i]) for i in range(4)], dark)

    def blurred(img, n):
        length = 6 + (n % 5) * 3
        kernel = np.zeros((length, length), np.float32)
        if n % 2:
            kernel[length // 2, :] = 1.0
        else:  # diagonal: the streak is sqrt(2) times as long
            np.fill_diagonal(kernel, 1.0)
        return cv2.filter2D(img, -1, kernel / length)
    make("motion blur 6-18 px (4 faces, 60-150 px)",
         lambda n: [face(n, i, (60, 90, 120, 150)[i]) for i in range(4)], blurred)
    make("several at once (8 faces, 40-200 px)", lambda n: [face(n, i, (40, 60, 80, 100, 120, 150, 180, 200)[i])
                                                             for i in range(8)])
    make("no faces (street-like collage)", lambda n: [])
    return sets
