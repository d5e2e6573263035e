#!/usr/bin/env bash
# Regenerates the camera fixtures: one 64x48 frame of ffmpeg's testsrc2 in the formats webcams
# deliver (YUYV, NV12, MJPEG), and ffmpeg's own RGB conversion of each as the reference that
# crates/capture's tests compare against. Made with ffmpeg 5.1 (Debian 12: apt-get install ffmpeg).
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
src=(-f lavfi -i testsrc2=size=64x48:rate=1 -frames:v 1)

# Camera formats, as a V4L2 driver hands them over.
ff "${src[@]}" -pix_fmt yuyv422 -f rawvideo frame.yuyv
ff "${src[@]}" -pix_fmt nv12 -f rawvideo frame.nv12
# MJPEG as a webcam sends it: baseline, 4:2:2, the standard (default) Huffman tables.
ff "${src[@]}" -pix_fmt yuvj422p -c:v mjpeg -huffman default -q:v 3 -f mjpeg frame.mjpeg

# References: ffmpeg converts the very bytes above to packed RGB (BT.601, limited range for YUV),
# upsampling chroma the way the code under test does: YUYV and NV12 by repeating each chroma
# sample (as the yuv crate does), MJPEG by interpolating (as zune-jpeg does). With ffmpeg's
# default (bicubic) chroma the differences at colour edges reach 58 (NV12) and 113 (MJPEG).
nearest=(-sws_flags neighbor+accurate_rnd+full_chroma_int)
smooth=(-sws_flags bilinear+accurate_rnd+full_chroma_int)
ff -f rawvideo -pix_fmt yuyv422 -s 64x48 -i frame.yuyv "${nearest[@]}" -pix_fmt rgb24 -f rawvideo frame.yuyv.rgb
ff -f rawvideo -pix_fmt nv12 -s 64x48 -i frame.nv12 "${nearest[@]}" -pix_fmt rgb24 -f rawvideo frame.nv12.rgb
ff -i frame.mjpeg "${smooth[@]}" -pix_fmt rgb24 -f rawvideo frame.mjpeg.rgb
