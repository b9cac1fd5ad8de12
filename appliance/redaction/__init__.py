"""Redaction: a copy of a recording in which bystanders cannot be recognised.

    original (vault) -> the gate (appliance.footage) -> PyAV decode -> detect faces, follow operator boxes, blur
                     -> libx264 + AAC (muted ranges zeroed) -> fragmented MP4 -> pipe in memory
                     -> Encryptor -> vault writer  => a new recording, linked to its original

What is blurred in a frame:
- every face the detector finds (detectors.py: CenterFace through OpenCV's DNN module by default, its
  model shipped in this package; OpenCV's Haar cascades by setting; nothing is downloaded at run time),
  unless its centre lies in a region the operator marks "keep" (the requester). Faces are searched every
  DETECT_INTERVAL seconds; between two searches that agree a face's box moves linearly from one sighting
  to the next; where they disagree (a face came, went or was missed once) the frames between are searched
  too and what either search saw stays blurred over the stretch;
- every box the operator draws at a keyframe time. Boxes with the same label form one track: between two
  keyframes the box moves linearly; after a track's last keyframe an OpenCV tracker (MIL) follows it to
  the end of the recording (or to an end marker, a box of size 0). Operator boxes are blurred even inside
  a keep region: the operator drew them on purpose.
Audio in the muted ranges is set to zero; the rest of the audio is kept (re-encoded as AAC).

Plaintext never touches the disk: the original is read through the gate (appliance.footage), the
derivative is muxed as fragmented MP4 (no seeking back) into `Pipe`, a bounded buffer in memory that the
container's Encryptor reads from on another thread. Memory stays bounded whatever the length: frames are streamed,
only the frames between two searched frames are held for the look-ahead.

The caller (appliance.jobs) runs `redact` on a worker thread with its own Box (own SQLite connection).

The modules, in the order the work flows: plan (the operator's instructions), detectors (finding
faces), faces (between the searches: interpolation, the operator boxes' tracker), pixels (blurring),
transcode (decode, blur, mute, encode), pipe, derivative (into the vault), jobs (in the background), still
(one frame for the form), editor (what the editor shows before a job: a frame's faces and a short preview,
read through the gate with the redaction's case).
"""

from .derivative import PURPOSES, Redacted, default_case_ref, derivatives_of, redact, redaction_of, redaction_purpose
from .editor import PREVIEW_SECONDS, Preview, faces_at, keep_region_for, open_for_editor, preview
from .detectors import CENTERFACE, DETECTORS, HAAR, CenterFace, Detector, Haar, make_detector
from .jobs import case_for, start_job
from .pipe import Pipe
from .pixels import laplacian_variance
from .plan import Keep, Keyframe, Plan, Rect, make_plan, parse_rect, parse_seconds
from .still import still_jpeg
from .transcode import Counts, redact_stream

__all__ = ["CENTERFACE", "DETECTORS", "HAAR", "PREVIEW_SECONDS", "PURPOSES", "CenterFace", "Counts", "Detector", "Haar",
           "Keep", "Keyframe", "Pipe", "Plan", "Preview", "Rect", "Redacted", "case_for", "default_case_ref",
           "derivatives_of", "faces_at", "keep_region_for", "laplacian_variance", "make_detector", "make_plan",
           "open_for_editor", "parse_rect", "parse_seconds", "preview", "redact", "redact_stream", "redaction_of",
           "redaction_purpose", "start_job", "still_jpeg"]
