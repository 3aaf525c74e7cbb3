/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket protocol between xlbctl and xlbd (UNIX stream).
 *
 * Request: the command line, as xlbctl got it:
 *     u32 magic XLB_CTL_MAGIC, u32 argc, then argc times (u32 len, bytes)
 * all in network byte order, at most XLB_CTL_MAX_ARGS arguments of at most
 * XLB_CTL_MAX_ARG bytes and XLB_CTL_MAX_REQUEST bytes in all.
 *
 * Reply: a stream of frames, u8 type, u32 length, payload:
 *     'o' bytes for xlbctl's stdout, 'e' for its stderr,
 *     'x' a single byte, the exit status; the last frame.
 * The daemon parses and formats everything, so xlbctl stays a pipe and one
 * parser decides what a command means.
 */
#ifndef XLB_CTL_PROTO_H
#define XLB_CTL_PROTO_H

#define XLB_CTL_MAGIC 0x584c4231u     /* "XLB1" */
#define XLB_CTL_MAX_ARGS 64
#define XLB_CTL_MAX_ARG 4096
#define XLB_CTL_MAX_REQUEST 65536
#define XLB_CTL_DEFAULT_SOCKET "/run/xlb/xlb.sock"

enum xlb_ctl_frame {
	XLB_CTL_STDOUT = 'o',
	XLB_CTL_STDERR = 'e',
	XLB_CTL_EXIT = 'x',
};

#endif
