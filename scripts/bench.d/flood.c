/* Overload generator for scripts/bench: sends real SRTP (AEAD_AES_128_GCM) in CMF frames for
 * the given legs, round-robin, at a fixed rate, for a fixed time, and reports what it sent. It
 * exists because `conclave loadgen` (Swift, one core) cannot offer twice the relay's saturation
 * rate; this one encrypts with libsrtp2 in C and sends with sendmmsg, and never receives.
 *
 *   flood HOST PORT PPS SECONDS SIZE LEGS_FILE
 * LEGS_FILE: one leg per line, "leg token_hex key_hex salt_hex" (client→relay, GCM: 16 + 12 bytes).
 * Prints one JSON line: {"sent": N, "seconds": S, "sentPerSecond": R}. Bounded by SECONDS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <srtp2/srtp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LEGS 1024
#define BATCH 64
#define FRAME 1600

struct leg {
    uint32_t id;
    uint64_t token;
    uint32_t ssrc;
    uint16_t sequence;
    srtp_t session;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int hex(const char *text, uint8_t *out, size_t length) {
    if (strlen(text) != 2 * length) return -1;
    for (size_t i = 0; i < length; i++)
        if (sscanf(text + 2 * i, "%2hhx", &out[i]) != 1) return -1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: flood HOST PORT PPS SECONDS SIZE LEGS_FILE\n");
        return 2;
    }
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    int size = atoi(argv[5]);
    if (rate <= 0 || seconds <= 0 || seconds > 120 || size < 40 || size > FRAME - 16 - 16) {
        fprintf(stderr, "flood: PPS > 0, 0 < SECONDS <= 120, 40 <= SIZE <= %d\n", FRAME - 32);
        return 2;
    }
    if (srtp_init() != srtp_err_status_ok) return 1;
    static struct leg legs[MAX_LEGS];
    int count = 0;
    FILE *file = fopen(argv[6], "r");
    if (!file) { perror(argv[6]); return 1; }
    char token[17], key[33], salt[25];
    unsigned id;
    while (count < MAX_LEGS && fscanf(file, "%u %16s %32s %24s", &id, token, key, salt) == 4) {
        uint8_t material[28];
        if (hex(key, material, 16) || hex(salt, material + 16, 12)) { fprintf(stderr, "flood: bad key line\n"); return 1; }
        srtp_policy_t policy;
        memset(&policy, 0, sizeof policy);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
        policy.ssrc.type = ssrc_any_outbound;
        policy.key = material;
        policy.window_size = 1024;
        struct leg *leg = &legs[count];
        leg->id = id;
        leg->token = strtoull(token, NULL, 16);
        leg->ssrc = (uint32_t)random() | 1;
        if (srtp_create(&leg->session, &policy) != srtp_err_status_ok) { fprintf(stderr, "flood: srtp_create\n"); return 1; }
        count++;
    }
    fclose(file);
    if (count == 0) { fprintf(stderr, "flood: no legs\n"); return 1; }

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    int buffer = 8 << 20;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    struct sockaddr_in relay = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &relay.sin_addr) != 1) { fprintf(stderr, "flood: bad host\n"); return 2; }

    static uint8_t frames[BATCH][FRAME];
    struct iovec vectors[BATCH];
    struct mmsghdr headers[BATCH];
    memset(headers, 0, sizeof headers);
    for (int i = 0; i < BATCH; i++) {
        vectors[i].iov_base = frames[i];
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
        headers[i].msg_hdr.msg_name = &relay;
        headers[i].msg_hdr.msg_namelen = sizeof relay;
    }
    double start = now(), end = start + seconds;
    unsigned long long sent = 0;
    int next = 0;
    while (now() < end) {
        double due = (now() - start) * rate;
        if ((double)sent >= due) {  /* ahead of the rate: wait a little */
            struct timespec pause = {0, 20000};
            nanosleep(&pause, NULL);
            continue;
        }
        int batch = 0;
        while (batch < BATCH && (double)(sent + batch) < due + 1) {
            struct leg *leg = &legs[next];
            next = (next + 1) % count;
            uint8_t *frame = frames[batch], *rtp = frame + 16;
            frame[0] = 0xC1; frame[1] = 0; frame[2] = 0; frame[3] = 0;
            uint32_t id = htonl(leg->id);
            memcpy(frame + 4, &id, 4);
            for (int i = 0; i < 8; i++) frame[8 + i] = (uint8_t)(leg->token >> (56 - 8 * i));
            leg->sequence++;
            uint16_t sequence = htons(leg->sequence);
            uint32_t timestamp = htonl((uint32_t)leg->sequence * 3000), ssrc = htonl(leg->ssrc);
            rtp[0] = 0x80; rtp[1] = 96;
            memcpy(rtp + 2, &sequence, 2);
            memcpy(rtp + 4, &timestamp, 4);
            memcpy(rtp + 8, &ssrc, 4);
            memset(rtp + 12, (int)(sent & 0xff), (size_t)size - 12);
            int length = size;
            if (srtp_protect(leg->session, rtp, &length) != srtp_err_status_ok) { fprintf(stderr, "flood: protect\n"); return 1; }
            vectors[batch].iov_len = (size_t)(16 + length);
            batch++;
        }
        int done = sendmmsg(sock, headers, (unsigned)batch, 0);
        if (done > 0) sent += (unsigned long long)done;
    }
    double elapsed = now() - start;
    printf("{\"sent\": %llu, \"seconds\": %.3f, \"sentPerSecond\": %.0f}\n", sent, elapsed, sent / elapsed);
    for (int i = 0; i < count; i++) srtp_dealloc(legs[i].session);
    return 0;
}
