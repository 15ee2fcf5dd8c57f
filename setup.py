"""tfspk: TensorFlow 2 / Keras 3 toolkit for speaker embeddings."""
from setuptools import find_packages, setup

TF_VERSION = "2.21.*"

setup(
    name="tfspk",
    version="0.1.0",
    description="Speaker embeddings in TensorFlow 2 / Keras 3: data, training, "
    "export for TF Serving, evaluation backends and frame-level probes.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfspk", "tfspk.*", "tfrecords_tools",
                                    "tfrecords_tools.*", "eval", "eval.*",
                                    "probes", "probes.*"]),
    # configs/flags links to the repository's configs/: the flag files ship with the package.
    package_data={"tfspk": ["synth/data/*.txt", "configs/flags/*.flags"]},
    install_requires=[
        # TensorFlow itself comes from the `cpu` or `gpu` extra so that users
        # pick the build; `import tfspk` names the extra when it is missing.
        "keras>=3.15,<4",
        "tensorboard>=2.20",
        "absl-py>=2.1",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
        "seaborn>=0.13",
        "soundfile>=0.12",
        "soxr>=0.3",
        "tqdm>=4.66",
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TF_VERSION}"],
        "gpu": [f"tensorflow[and-cuda]=={TF_VERSION}"],
        "demo": ["espeakng-loader>=0.2"],
        "serving": ["tensorflow-serving-api==2.21.0", "grpcio>=1.60"],
        "beam": ["apache-beam>=2.60"],
        "m4a": ["av>=12"],
        "kaldi": ["kaldiio>=2.18"],
        "onnx": ["tf2onnx>=1.16", "onnxruntime>=1.17"],
        "tflite": ["ai-edge-litert>=1.0"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "kaldi-native-fbank>=1.20,<1.21",  # 1.21+: float32 FFT, see tests/kaldi_reference.py
            "espeakng-loader>=0.2",
            "av>=12",
            "apache-beam>=2.60",
            "kaldiio>=2.18",
            "tf2onnx>=1.16",
            "onnxruntime>=1.17",
            "ai-edge-litert>=1.0",
        ],
    },
)
