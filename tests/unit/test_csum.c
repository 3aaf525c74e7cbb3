/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Recognising partial checksums (nat.h: xlb_csum_is_partial) on real
 * captures, and completing them.
 *
 * The two captures were taken in the lab (tools/xlb-lab), on the switch's
 * ports, of what the client C1 and the backends B1 and B2 sent through xlb:
 * HTTP over IPv4 and IPv6 (handshake, a 681-byte request, data, FIN) and
 * UDP queries and answers in both families.
 *  - veth-csum-partial.pcap: veth's default offloads (tx checksumming on),
 *    so every TCP and UDP checksum is the pseudo-header's sum only;
 *  - veth-csum-complete.pcap: the same exchange after
 *    `ethtool -K eth0 tx off` on the senders: full checksums, as from a
 *    physical NIC.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "nat.h"
#include "packet.h"
#include "unit.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define LINKTYPE_ETHERNET 1

struct capture {
	uint8_t *data;
	size_t len, off;
};

static bool capture_open(struct capture *c, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint32_t magic, linktype;
	long n;

	memset(c, 0, sizeof(*c));
	if (!f) {
		perror(path);
		return false;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	c->data = malloc((size_t)n);
	if (!c->data || fread(c->data, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return false;
	}
	fclose(f);
	c->len = (size_t)n;
	if (c->len < 24)
		return false;
	/* tcpdump writes in the host's byte order: little-endian here. */
	memcpy(&magic, c->data, 4);
	memcpy(&linktype, c->data + 20, 4);
	c->off = 24;
	return (magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS) && linktype == LINKTYPE_ETHERNET;
}

/* The next frame, or NULL at the end; *len its captured length. */
static uint8_t *capture_next(struct capture *c, uint32_t *len)
{
	uint32_t incl, orig;
	uint8_t *frame;

	if (c->off + 16 > c->len)
		return NULL;
	memcpy(&incl, c->data + c->off + 8, 4);
	memcpy(&orig, c->data + c->off + 12, 4);
	if (c->off + 16 + incl > c->len || incl != orig)
		return NULL;   /* truncated snapshots are not what we captured */
	frame = c->data + c->off + 16;
	c->off += 16 + incl;
	*len = incl;
	return frame;
}

static unsigned int csum_off(const struct xlb_pkt *p)
{
	return p->tuple.proto == IPPROTO_TCP ? 16 : 6;
}

/* The receiver's check: the sum over pseudo-header and datagram,
 * checksum included, is all ones. */
static bool csum_verifies(const struct xlb_pkt *p)
{
	uint32_t len = p->l4_len;

	if (p->tuple.proto == IPPROTO_UDP) {
		uint16_t ulen;

		memcpy(&ulen, p->data + p->l4_off + 4, 2);
		len = ntohs(ulen);
	}
	return xlb_csum_add(xlb_csum_pseudo(p->tuple.family, p->data + p->l3_off, p->tuple.proto,
					    len),
			    p->data + p->l4_off, len) == 0xffff;
}

/* Kinds seen: [v6][udp]. */
struct seen {
	unsigned int n[2][2];
};

static void check_capture(const char *path, bool partial, struct seen *seen)
{
	struct capture c;
	uint8_t *frame;
	uint32_t len;

	memset(seen, 0, sizeof(*seen));
	CU_ASSERT_FATAL(capture_open(&c, path));
	while ((frame = capture_next(&c, &len))) {
		struct xlb_pkt p;
		uint16_t stored;

		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, frame, len), XLB_PARSE_OK);
		CU_ASSERT_FATAL(p.tuple.proto == IPPROTO_TCP || p.tuple.proto == IPPROTO_UDP);
		seen->n[p.tuple.family == AF_INET6][p.tuple.proto == IPPROTO_UDP]++;
		memcpy(&stored, p.data + p.l4_off + csum_off(&p), 2);

		CU_ASSERT_EQUAL(xlb_csum_is_partial(&p), partial);
		CU_ASSERT_EQUAL(csum_verifies(&p), !partial);
		if (partial) {
			/* What the kernel would have sent. */
			xlb_csum_complete(&p);
			CU_ASSERT(csum_verifies(&p));
			CU_ASSERT_FALSE(xlb_csum_is_partial(&p));
		} else {
			/* Completing a complete checksum changes nothing. */
			xlb_csum_complete(&p);
			CU_ASSERT_EQUAL(memcmp(p.data + p.l4_off + csum_off(&p), &stored, 2), 0);
		}
	}
	CU_ASSERT_EQUAL(c.off, c.len);   /* every frame read */
	free(c.data);
	/* Both families and both protocols are in each capture. */
	for (int v6 = 0; v6 < 2; v6++)
		for (int udp = 0; udp < 2; udp++)
			CU_ASSERT(seen->n[v6][udp] >= 2);
}

static void test_capture_partial(void)
{
	struct seen seen;

	check_capture("unit/captures/veth-csum-partial.pcap", true, &seen);
}

static void test_capture_complete(void)
{
	struct seen seen;

	check_capture("unit/captures/veth-csum-complete.pcap", false, &seen);
}

/*
 * A complete, correct checksum that happens to equal the pseudo-header's
 * sum (1 datagram in 65,536 by chance; built here on purpose by choosing a
 * payload word) is taken for partial: completing it must give back the
 * same bytes. And a UDP "no checksum" 0 is never partial.
 */
static void test_coincidence_is_harmless(void)
{
	uint8_t b[14 + 20 + 20 + 4] = { 0 };
	uint8_t *ip = b + 14, *tcp = ip + 20;
	struct xlb_pkt p;
	uint16_t pseudo, c, x;
	uint32_t sum;

	b[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = sizeof(b) - 14;
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	inet_pton(AF_INET, "198.18.0.10", ip + 12);
	inet_pton(AF_INET, "198.18.0.100", ip + 16);
	tcp[0] = 0x9c;
	tcp[3] = 80;
	tcp[12] = 5 << 4;
	tcp[13] = 0x10;
	tcp[14] = 0xff;
	CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, b, sizeof(b)), XLB_PARSE_OK);
	pseudo = (uint16_t)xlb_csum_pseudo(AF_INET, ip, IPPROTO_TCP, 24);
	/* Want ~(pseudo + data) == pseudo, data summed without the field:
	 * data + 2 * pseudo must be all ones. sum below holds the field
	 * (pseudo) and every other word but the last, which is chosen. */
	memcpy(tcp + 16, &pseudo, 2);
	sum = xlb_csum_add(0, tcp, 22);
	x = (uint16_t)~xlb_csum_add(sum + pseudo, tcp, 0);
	memcpy(tcp + 22, &x, 2);
	CU_ASSERT_FATAL(csum_verifies(&p));
	CU_ASSERT(xlb_csum_is_partial(&p));
	xlb_csum_complete(&p);
	memcpy(&c, tcp + 16, 2);
	CU_ASSERT_EQUAL(c, pseudo);
	CU_ASSERT(csum_verifies(&p));

	/* UDP with no checksum. */
	{
		uint8_t u[14 + 20 + 8 + 4] = { 0 };

		u[12] = 0x08;
		u[14] = 0x45;
		u[17] = sizeof(u) - 14;
		u[22] = 64;
		u[23] = IPPROTO_UDP;
		inet_pton(AF_INET, "198.18.0.10", u + 26);
		inet_pton(AF_INET, "198.18.0.100", u + 30);
		u[34 + 1] = 99;
		u[34 + 3] = 53;
		u[34 + 5] = 12;
		CU_ASSERT_EQUAL_FATAL(xlb_pkt_parse(&p, u, sizeof(u)), XLB_PARSE_OK);
		CU_ASSERT_FALSE(xlb_csum_is_partial(&p));
	}
}

/* The 8-bytes-at-a-time sum against the definition, at every length and
 * alignment up to 80 bytes, on random data. */
static void test_sum_matches_definition(void)
{
	uint8_t buf[96];

	srand(7);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(round % 3 ? rand() : 0xff);
		for (unsigned int start = 0; start < 8; start++) {
			for (unsigned int len = 0; len <= 80; len++) {
				uint32_t want = (uint32_t)(round & 0xffff), got;
				const uint8_t *q = buf + start;

				for (unsigned int i = 0; i + 1 < len; i += 2)
					want += (uint32_t)(q[i] | q[i + 1] << 8);
				if (len & 1)
					want += q[len - 1];
				while (want >> 16)
					want = (want & 0xffff) + (want >> 16);
				got = xlb_csum_add((uint32_t)(round & 0xffff), q, len);
				/* The same one's-complement value: equal, or
				 * both a zero (0 / 0xffff). */
				if (got != want)
					CU_ASSERT((got == 0 || got == 0xffff) && (want == 0 || want == 0xffff));
			}
		}
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "veth capture, offload on: every checksum partial", test_capture_partial },
		{ "veth capture, offload off: none partial", test_capture_complete },
		{ "a complete checksum equal to the pseudo sum: harmless", test_coincidence_is_harmless },
		{ "8-byte checksum sum matches the definition", test_sum_matches_definition },
	};

	return UNIT_RUN("csum", NULL, NULL, tests);
}
