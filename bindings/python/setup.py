"""Build of the native part of the binding.

`pip install ./bindings/python` runs this: SWIG generates the wrapper from
src/zerobus_native.i and include/zerobus_abi.h, the extension zerobus._native is
compiled against libzerobus.so.1, and that library is copied next to it (found by
the loader through rpath $ORIGIN), so the installed package needs nothing else.

Where libzerobus.so.1 comes from, in order:
  1. $ZEROBUS_LIB (a path to libzerobus.so.1),
  2. <repo>/build/plain/src/libzerobus.so.1 when it exists,
  3. a fresh CMake build of the repository into a temporary directory.
The repository root is $ZEROBUS_SOURCE_DIR, else two levels above this file.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
LIBNAME = "libzerobus.so.1"


def source_root():
    root = os.environ.get("ZEROBUS_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
    if not os.path.isfile(os.path.join(root, "include", "zerobus_abi.h")):
        sys.exit(
            "libzerobus sources not found at %s: set ZEROBUS_SOURCE_DIR to the "
            "repository root" % root
        )
    return root


def find_or_build_library(root, tmp):
    explicit = os.environ.get("ZEROBUS_LIB")
    if explicit:
        if not os.path.isfile(explicit):
            sys.exit("ZEROBUS_LIB=%s does not exist" % explicit)
        return explicit
    prebuilt = os.path.join(root, "build", "plain", "src", LIBNAME)
    if os.path.isfile(prebuilt):
        return prebuilt
    build_dir = os.path.join(tmp, "cmake-build")
    print("building libzerobus with CMake in %s" % build_dir)
    subprocess.check_call(
        ["cmake", "-S", root, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
    )
    subprocess.check_call(["cmake", "--build", build_dir, "--target", "zerobus", "-j2"])
    return os.path.join(build_dir, "src", LIBNAME)


class BuildNative(build_ext):
    """Runs SWIG, links against libzerobus.so.1 and bundles it."""

    def run(self):
        root = source_root()
        tmp = tempfile.mkdtemp(prefix="zerobus-build-")
        try:
            lib = find_or_build_library(root, tmp)
            libdir = os.path.join(tmp, "lib")
            os.makedirs(libdir)
            # Link against a private copy so the link line names exactly this file.
            local_lib = os.path.join(libdir, LIBNAME)
            shutil.copyfile(lib, local_lib)
            gen_dir = os.path.join(tmp, "swig")
            os.makedirs(gen_dir)
            wrapper = os.path.join(gen_dir, "zerobus_native_wrap.c")
            subprocess.check_call(
                [
                    os.environ.get("SWIG", "swig"),
                    "-python",
                    "-I" + os.path.join(root, "include"),
                    "-outdir",
                    gen_dir,
                    "-o",
                    wrapper,
                    os.path.join(HERE, "src", "zerobus_native.i"),
                ]
            )
            for ext in self.extensions:
                ext.sources = [wrapper]
                ext.include_dirs.append(os.path.join(root, "include"))
                ext.extra_link_args += [local_lib, "-Wl,-rpath,$ORIGIN"]
            build_ext.run(self)
            # The SWIG proxy module and the library go next to the extension.
            pkg_dir = os.path.join(self.build_lib, "zerobus")
            os.makedirs(pkg_dir, exist_ok=True)
            shutil.copyfile(os.path.join(gen_dir, "native.py"), os.path.join(pkg_dir, "native.py"))
            shutil.copyfile(local_lib, os.path.join(pkg_dir, LIBNAME))
            if self.inplace:
                shutil.copyfile(local_lib, os.path.join(HERE, "zerobus", LIBNAME))
                shutil.copyfile(
                    os.path.join(gen_dir, "native.py"),
                    os.path.join(HERE, "zerobus", "native.py"),
                )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


setup(
    ext_modules=[
        Extension(
            "zerobus._native",
            sources=["src/zerobus_native.i"],  # replaced by the generated wrapper
            extra_compile_args=["-O2", "-fno-strict-aliasing", "-fvisibility=hidden"],
        )
    ],
    cmdclass={"build_ext": BuildNative},
)
