#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "base/temp_dir.hpp"
#include "registry/certificate_authority.hpp"

namespace firehook::registry {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// OpenSSL objects for the tests' side of the checks: requests as a device makes them, and a look
// at what was issued.
struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct req_free {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using req_ptr = std::unique_ptr<X509_REQ, req_free>;

pkey_ptr p256() {
  return pkey_ptr(EVP_EC_gen("P-256"));
}

x509_ptr parse(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  x509_ptr x(PEM_read_bio_X509(b, nullptr, nullptr, nullptr));
  BIO_free(b);
  return x;
}

std::string cn_of(X509* x) {
  char text[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, text, sizeof text);
  return text;
}

// A request for `cn` holding the public key of `subject_key`, signed by `signer` (a device signs
// with its own key; a different signer makes a request whose self-signature is wrong). With
// `ask_for_ca`, it also asks for basicConstraints CA:TRUE, which must be ignored.
std::string make_csr(EVP_PKEY* subject_key, EVP_PKEY* signer, const std::string& cn,
                     bool ask_for_ca = false) {
  req_ptr req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.data()),
                             static_cast<int>(cn.size()), -1, 0);
  X509_REQ_set_pubkey(req.get(), subject_key);
  if (ask_for_ca) {
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts,
                           X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE"));
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_sign(req.get(), signer, EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(b, req.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return pem;
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

class certificate_authority_test : public ::testing::Test {
protected:
  base::temp_dir dir_{"firehook-ca"};
  ca_files files_ = ca_files::in(dir_.path() / "state");
};

TEST_F(certificate_authority_test, init_writes_a_p256_ca_with_a_private_key_file) {
  const auto ca = certificate_authority::create(files_, "Test CA", 3650);
  EXPECT_EQ(mode_of(files_.key), 0600u);
  EXPECT_EQ(mode_of(files_.key.parent_path()), 0700u);
  EXPECT_EQ(ca.subject(), "CN=Test CA");
  EXPECT_FALSE(ca.intermediate());
  const auto x = parse(ca.certificate_pem());
  ASSERT_TRUE(x);
  EXPECT_EQ(X509_check_ca(x.get()), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(x.get())), EVP_PKEY_EC);
  // Loading finds the same CA; a second init refuses to replace it.
  EXPECT_EQ(certificate_authority::load(files_).certificate_pem(), ca.certificate_pem());
  EXPECT_THROW(certificate_authority::create(files_, "Again", 10), ca_error);
}

TEST_F(certificate_authority_test, no_ca_yet_says_so) {
  try {
    certificate_authority::load(files_);
    FAIL() << "loaded a CA that does not exist";
  } catch (const ca_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no CA yet"));
    EXPECT_THAT(e.what(), HasSubstr("firehook ca init"));
  }
}

TEST_F(certificate_authority_test, issues_a_client_certificate_that_verifies_against_the_ca) {
  const auto ca = certificate_authority::create(files_, "Test CA", 3650);
  const auto issued = ca.issue_with_new_key({"sensor-1", "urn:firehook:device:sensor-1", 30});
  EXPECT_EQ(verify_certificate(issued.certificate_pem, ca.certificate_pem()), "");
  EXPECT_THAT(issued.private_key_pem, HasSubstr("PRIVATE KEY"));
  const auto x = parse(issued.certificate_pem);
  ASSERT_TRUE(x);
  EXPECT_EQ(cn_of(x.get()), "sensor-1");
  EXPECT_EQ(X509_check_ca(x.get()), 0);
  EXPECT_TRUE(X509_get_extended_key_usage(x.get()) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(x.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_get_key_usage(x.get()), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  // 16 random bytes, the first 0x01..0x7f: 32 hex digits.
  EXPECT_EQ(issued.serial_hex.size(), 32u);
  EXPECT_EQ(issued.fingerprint_sha256.size(), 64u);
  EXPECT_NEAR(static_cast<double>(issued.not_after - issued.not_before), 30 * 86400.0 + 300, 5);
  // The key in the bundle is the key of the certificate.
  BIO* b = BIO_new_mem_buf(issued.private_key_pem.data(), static_cast<int>(issued.private_key_pem.size()));
  pkey_ptr key(PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr));
  BIO_free(b);
  EXPECT_EQ(X509_check_private_key(x.get(), key.get()), 1);
  // Another CA does not vouch for it.
  const auto other = certificate_authority::create(ca_files::in(dir_.path() / "other"), "Other CA", 3650);
  EXPECT_NE(verify_certificate(issued.certificate_pem, other.certificate_pem()), "");
  // Two certificates never share a serial.
  EXPECT_NE(ca.issue_with_new_key({"sensor-1", "", 30}).serial_hex, issued.serial_hex);
}

TEST_F(certificate_authority_test, signs_only_the_public_key_of_a_request) {
  const auto ca = certificate_authority::create(files_, "Test CA", 3650);
  auto device_key = p256();
  const auto csr = make_csr(device_key.get(), device_key.get(), "whatever-the-device-asks", true);
  const auto issued = ca.sign_request(csr, "sensor-1.csr", {"sensor-1", "", 365});
  EXPECT_TRUE(issued.private_key_pem.empty());
  const auto x = parse(issued.certificate_pem);
  ASSERT_TRUE(x);
  EXPECT_EQ(cn_of(x.get()), "sensor-1"); // the name is the registry's, never the request's
  EXPECT_EQ(X509_check_ca(x.get()), 0);  // CA:TRUE asked for, not given
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(x.get()), device_key.get()), 1);
  EXPECT_EQ(verify_certificate(issued.certificate_pem, ca.certificate_pem()), "");
}

TEST_F(certificate_authority_test, refuses_a_request_with_a_wrong_self_signature) {
  const auto ca = certificate_authority::create(files_, "Test CA", 3650);
  auto victim = p256();
  auto attacker = p256();
  // Someone else's public key, signed with a key that is not its own: no proof of possession.
  const auto csr = make_csr(victim.get(), attacker.get(), "sensor-1");
  try {
    ca.sign_request(csr, "forged.csr", {"sensor-1", "", 365});
    FAIL() << "signed a forged request";
  } catch (const ca_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("forged.csr"));
    EXPECT_THAT(e.what(), HasSubstr("signature is wrong"));
  }
}

TEST_F(certificate_authority_test, refuses_what_is_not_a_request_and_a_weak_key) {
  const auto ca = certificate_authority::create(files_, "Test CA", 3650);
  EXPECT_THROW(ca.sign_request("hello", "x.csr", {"s", "", 1}), ca_error);
  EXPECT_THROW(ca.sign_request(ca.certificate_pem(), "x.csr", {"s", "", 1}), ca_error);
  pkey_ptr weak(EVP_RSA_gen(1024));
  EXPECT_THROW(ca.sign_request(make_csr(weak.get(), weak.get(), "s"), "weak.csr", {"s", "", 1}), ca_error);
}

TEST_F(certificate_authority_test, a_certificate_may_not_outlive_its_ca) {
  const auto ca = certificate_authority::create(files_, "Short CA", 10);
  EXPECT_THROW(ca.issue_with_new_key({"s", "", 365}), ca_error);
  EXPECT_NO_THROW(ca.issue_with_new_key({"s", "", 5}));
}

TEST_F(certificate_authority_test, imports_an_existing_ca_but_not_a_leaf_nor_a_wrong_key) {
  const auto root = certificate_authority::create(ca_files::in(dir_.path() / "root"), "Root", 3650);
  const auto inter = root.issue_with_new_key({"Intermediate", "", 1000});
  // issue_with_new_key makes leaf certificates (CA:FALSE): importing one is refused.
  const auto leaf_cert = dir_.write("leaf.crt", inter.certificate_pem);
  const auto leaf_key = dir_.write("leaf.key", inter.private_key_pem);
  try {
    certificate_authority::import(files_, leaf_cert, leaf_key);
    FAIL() << "imported a certificate that is not a CA";
  } catch (const ca_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("leaf.crt"));
    EXPECT_THAT(e.what(), HasSubstr("not a CA"));
  }
  EXPECT_FALSE(fs::exists(files_.key));
  // A key that is not the certificate's is refused too.
  const auto root_files = ca_files::in(dir_.path() / "root");
  const auto wrong_key = dir_.write("wrong.key", inter.private_key_pem);
  EXPECT_THROW(certificate_authority::import(files_, root_files.certificate, wrong_key), ca_error);
  // The root itself imports (a self-signed CA), and issues certificates that verify.
  const auto imported = certificate_authority::import(files_, root_files.certificate, root_files.key);
  EXPECT_EQ(mode_of(files_.key), 0600u);
  EXPECT_EQ(imported.subject(), "CN=Root");
  EXPECT_EQ(
      verify_certificate(imported.issue_with_new_key({"d", "", 10}).certificate_pem, root.certificate_pem()),
      "");
}

TEST_F(certificate_authority_test, finds_the_bundle_that_verifies_a_server_certificate) {
  const auto a = certificate_authority::create(ca_files::in(dir_.path() / "a"), "A", 3650);
  const auto b = certificate_authority::create(ca_files::in(dir_.path() / "b"), "B", 3650);
  const auto server = b.issue_with_new_key({"localhost", "", 30});
  EXPECT_EQ(bundle_verifying(server.certificate_pem, {a.certificate_pem(), b.certificate_pem()}), 1);
  EXPECT_EQ(bundle_verifying(server.certificate_pem, {a.certificate_pem() + b.certificate_pem()}), 0);
  EXPECT_EQ(bundle_verifying(server.certificate_pem, {a.certificate_pem(), ""}), -1);
  EXPECT_EQ(bundle_verifying("", {a.certificate_pem()}), -1);
}

} // namespace
} // namespace firehook::registry
