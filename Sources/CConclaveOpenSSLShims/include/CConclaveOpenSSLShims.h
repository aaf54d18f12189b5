#pragma once
// Functions for OpenSSL macros that Swift cannot import (function-like macros and typed
// stacks). Each wraps exactly one macro or call, named conclave_ssl_<what it wraps>.
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/pkcs7.h>

/// SSL_CTX_set_min_proto_version / SSL_CTX_set_max_proto_version.
int conclave_ssl_ctx_set_proto_versions(SSL_CTX *context, int minimum, int maximum);
/// SSL_set_tlsext_host_name (SNI on the client).
int conclave_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
/// The SSL_OP_* options Conclave sets on every context.
uint64_t conclave_ssl_default_options(void);
/// BIO_get_mem_data: the bytes a memory BIO holds, without copying.
long conclave_ssl_bio_get_mem_data(BIO *bio, char **data);
/// BIO_set_mem_eof_return.
void conclave_ssl_bio_set_mem_eof_return(BIO *bio, int value);
/// The certificates of a PKCS#7 SignedData (p7->d.sign->cert), or NULL. Borrowed.
STACK_OF(X509) *conclave_ssl_pkcs7_certificates(PKCS7 *p7);
/// SSL_CTX_set_tmp_ecdh-free group selection: SSL_CTX_set1_groups_list.
int conclave_ssl_ctx_set1_groups_list(SSL_CTX *context, const char *groups);
/// SSL_CTX_set_session_cache_mode.
void conclave_ssl_ctx_disable_session_cache(SSL_CTX *context);
/// X509_NAME_print_ex with XN_FLAG_RFC2253 (UTF-8 kept as is).
int conclave_ssl_name_print_rfc2253(BIO *bio, const X509_NAME *name);
/// sk_X509_pop_free(stack, X509_free).
void conclave_ssl_x509_stack_free(STACK_OF(X509) *stack);
/// sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free).
void conclave_ssl_extension_stack_free(STACK_OF(X509_EXTENSION) *stack);
/// SSL_CTX_add1_chain_cert (up-references certificate).
int conclave_ssl_ctx_add1_chain_cert(SSL_CTX *context, X509 *certificate);
