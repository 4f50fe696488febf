"""mclir-basicsr: task-agnostic training add-ons for image restoration (MCLIR/SPN, all-in-one, DCPT, DSRIR, ConStyle).

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
    description=('Task-agnostic training add-ons for image restoration (MCLIR/SPN, all-in-one, DCPT, DSRIR, '
                 'ConStyle), as a BasicSR plugin'),
    long_description=open(osp.join(here, 'README.md'), encoding='utf-8').read() if osp.exists(
        osp.join(here, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mclir_basicsr', 'mclir_basicsr.*']),
    python_requires='>=3.9',
    # Lower bounds are what the code needs: torch.amp.GradScaler(device), torch.compiler.list_backends and
    # torch.load(mmap=) need torch 2.3; torchvision 0.18 is its pair (VGG*_Weights enums). basicsr itself pulls
    # scikit-image and tb-nightly; what WE import is declared here.
    install_requires=[
        'basicsr==1.4.2',
        'torch>=2.3',
        'torchvision>=0.18',
        'numpy>=1.21',
        'opencv-python>=4.5',
        'Pillow>=9.0',
        'lmdb>=1.0',
        'pyyaml>=5.4',
        'tensorboard>=2.10',
    ],
    extras_require={
        'demo': ['scikit-image>=0.19', 'matplotlib>=3.5'],  # the bundled photos; the demo's curve PNG
        'test': ['pytest>=7', 'scikit-image>=0.19'],
        'lint': ['flake8>=6', 'isort>=5.12'],
        'bench': ['matplotlib>=3.5', 'scikit-image>=0.19'],
    },
    entry_points={
        'console_scripts': [
            'mclir-train=mclir_basicsr.train:main',
            'mclir-test=mclir_basicsr.test:main',
            'mclir-demo=mclir_basicsr.cli.demo:main',
            'mclir-make-lmdb=mclir_basicsr.data.lmdb_tools:main',
            'mclir-demo-data=mclir_basicsr.data.demo_data:main',
            'mclir-probe-degradation=mclir_basicsr.cli.probe:main',
            'mclir-fetch-vgg=mclir_basicsr.cli.fetch_vgg:main',
            'mclir-restore=mclir_basicsr.cli.restore:main',
        ]
    },
    license='Apache-2.0',
    classifiers=['Programming Language :: Python :: 3', 'Topic :: Scientific/Engineering :: Image Processing'],
)
