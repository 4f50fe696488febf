"""mclir-basicsr: model contrastive learning (history-copy negatives, SPN loss) as a BasicSR plugin.

basicsr 1.4.2 is an sdist whose build needs torch: install torch first and basicsr with
``pip install --no-build-isolation basicsr==1.4.2`` (see README), or pip downloads a second torch to build it.
"""
import os.path as osp

from setuptools import find_packages, setup

here = osp.dirname(osp.abspath(__file__))
version = {}
with open(osp.join(here, 'mclir_basicsr', 'version.py')) as f:
    exec(f.read(), version)

setup(
    name='mclir-basicsr',
    version=version['__version__'],
    description='Model contrastive learning ("learning from history") for image restoration, as a BasicSR plugin',
    long_description=open(osp.join(here, 'README.md'), encoding='utf-8').read() if osp.exists(
        osp.join(here, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mclir_basicsr', 'mclir_basicsr.*']),
    python_requires='>=3.9',
    install_requires=[
        'basicsr==1.4.2',
        'torch>=2.0',
        'torchvision',
        'opencv-python',
        'lmdb',
        'pyyaml',
        'tensorboard',
        'scikit-image',
        'numpy',
    ],
    extras_require={'test': ['pytest'], 'bench': ['matplotlib']},
    entry_points={
        'console_scripts': [
            'mclir-train=mclir_basicsr.train:main',
            'mclir-test=mclir_basicsr.test:main',
            'mclir-demo=mclir_basicsr.demo:main',
            'mclir-make-lmdb=mclir_basicsr.data.lmdb_tools:main',
            'mclir-demo-data=mclir_basicsr.data.demo_data:main',
        ]
    },
    license='Apache-2.0',
    classifiers=['Programming Language :: Python :: 3', 'Topic :: Scientific/Engineering :: Image Processing'],
)
