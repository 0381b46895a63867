#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <future>
#include <thread>

#include "base/temp_dir.hpp"
#include "registry/enrollment.hpp"

namespace firehook::registry {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A PEM request for a fresh EC P-256 key, as `openssl req -new -newkey ec` makes it on a device.
std::string device_csr(const std::string& cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509_REQ* req = X509_REQ_new();
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()),
                             -1, 0);
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(b, req);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(b);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return pem;
}

std::string json_request(const std::string& csr, const std::string& extra = {}) {
  std::string escaped;
  for (const char c : csr) {
    escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return "{\"csr\": \"" + escaped + "\"" + extra + "}";
}

class enrollment_test : public ::testing::Test {
protected:
  enrollment_test() {
    templates_.templates.push_back({"thermostat", {"thermostats"}, {{"building", "b1"}}, 30});
    certificate_authority::create(ca_, "test CA", 365);
  }

  std::string token(std::int64_t expires_in = 3600) {
    return tokens_->create("thermostat", 1, unix_now() + expires_in).front();
  }
  enrollment_outcome enroll_as(const std::string& name, const std::string& t, const std::string& payload) {
    return enroll(*tokens_, templates_, ca_, name, hash_enrollment_token(t), payload, unix_now());
  }

  base::temp_dir dir_{"firehook-enrollment"};
  std::shared_ptr<device_registry> devices_ = device_registry::open(dir_ / "firehook.db");
  std::shared_ptr<enrollment_tokens> tokens_ = std::make_shared<enrollment_tokens>(devices_->database());
  config::enrollment_settings templates_;
  ca_files ca_ = ca_files::in(dir_ / "state");
};

TEST_F(enrollment_test, tokens_are_128_random_bits_and_only_their_hash_is_stored) {
  const auto made = tokens_->create("thermostat", 3, unix_now() + 60);
  ASSERT_EQ(made.size(), 3U);
  EXPECT_NE(made[0], made[1]);
  EXPECT_THAT(made[0], StartsWith("fhe1_"));
  EXPECT_EQ(made[0].size(), 5U + 32U);
  auto c = devices_->database()->lock();
  auto s = c.prepare("SELECT hash FROM enrollment_tokens");
  while (s.step()) {
    EXPECT_EQ(s.column_text(0).size(), 64U);
    for (const auto& t : made) {
      EXPECT_EQ(s.column_text(0).find(t.substr(5)), std::string::npos);
    }
  }
}

TEST_F(enrollment_test, check_tells_valid_unknown_and_expired) {
  const auto now = unix_now();
  const auto t = token(60);
  EXPECT_EQ(tokens_->check(hash_enrollment_token(t), now).status, token_status::valid);
  EXPECT_EQ(tokens_->check(hash_enrollment_token(t), now).template_name, "thermostat");
  EXPECT_EQ(tokens_->check(hash_enrollment_token(t), now + 61).status, token_status::expired);
  EXPECT_EQ(tokens_->check(hash_enrollment_token("fhe1_wrong"), now).status, token_status::unknown);
}

TEST_F(enrollment_test, a_token_enrols_one_device_once) {
  const auto t = token();
  const auto first = enroll_as("thermo-1", t, json_request(device_csr("anything")));
  ASSERT_TRUE(first.issued) << first.reason;
  EXPECT_THAT(first.response, HasSubstr("\"status\":\"issued\""));
  EXPECT_THAT(first.response, HasSubstr("BEGIN CERTIFICATE"));
  const auto d = devices_->find("thermo-1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->roles, std::vector<std::string>{"thermostats"});
  EXPECT_EQ(d->attributes.at("building"), "b1");
  ASSERT_EQ(d->certificates.size(), 1U);
  EXPECT_EQ(d->certificates[0].serial_hex, first.serial_hex);

  const auto second = enroll_as("thermo-2", t, json_request(device_csr("thermo-2")));
  EXPECT_FALSE(second.issued);
  EXPECT_EQ(second.reason, "token already used");
  EXPECT_THAT(second.response, HasSubstr("\"status\":\"refused\""));
  EXPECT_FALSE(devices_->find("thermo-2"));
  EXPECT_EQ(tokens_->check(hash_enrollment_token(t), unix_now()).status, token_status::used);
}

TEST_F(enrollment_test, concurrent_uses_of_one_token_enrol_one_device) {
  const auto t = token();
  const auto csr = json_request(device_csr("x"));
  std::vector<std::future<enrollment_outcome>> runs;
  for (int i = 0; i < 4; ++i) {
    // Two databases connections, as the broker and another process would have.
    runs.push_back(std::async(std::launch::async, [&, i] {
      auto own = enrollment_tokens::open(dir_ / "firehook.db");
      return enroll(*own, templates_, ca_, "dev-" + std::to_string(i), hash_enrollment_token(t), csr,
                    unix_now());
    }));
  }
  int issued = 0;
  for (auto& r : runs) {
    const auto o = r.get();
    issued += o.issued ? 1 : 0;
    if (!o.issued) {
      EXPECT_EQ(o.reason, "token already used");
    }
  }
  EXPECT_EQ(issued, 1);
  EXPECT_EQ(devices_->list().size(), 1U);
}

TEST_F(enrollment_test, expired_and_wrong_tokens_are_refused) {
  EXPECT_EQ(enroll_as("a", token(-1), json_request(device_csr("a"))).reason, "token expired");
  EXPECT_EQ(enroll_as("a", "fhe1_00000000000000000000000000000000", json_request(device_csr("a"))).reason,
            "unknown token");
  EXPECT_TRUE(devices_->list().empty());
}

TEST_F(enrollment_test, a_request_for_more_than_the_template_is_refused_and_keeps_the_token) {
  const auto t = token();
  const auto csr = device_csr("a");
  EXPECT_THAT(enroll_as("a", t, json_request(csr, ", \"template\": \"gateway\"")).reason,
              HasSubstr("template mismatch: the token enrols into template \"thermostat\", not \"gateway\""));
  EXPECT_THAT(enroll_as("a", t, json_request(csr, ", \"roles\": [\"thermostats\", \"admin\"]")).reason,
              HasSubstr("roles mismatch"));
  EXPECT_THAT(enroll_as("a", t, json_request(csr, ", \"attributes\": {\"building\": \"b2\"}")).reason,
              HasSubstr("attributes mismatch"));
  // Asking for exactly what the template gives is fine, and the token was not spent above.
  const auto ok = enroll_as(
      "a", t,
      json_request(csr, ", \"template\": \"thermostat\", \"roles\": [\"thermostats\"], \"attributes\": "
                        "{\"building\": \"b1\"}"));
  EXPECT_TRUE(ok.issued) << ok.reason;
}

TEST_F(enrollment_test, bad_requests_are_refused_with_a_reason) {
  const auto t = token();
  EXPECT_THAT(enroll_as("a", t, "hello").reason, HasSubstr("neither a JSON object nor a PEM"));
  EXPECT_THAT(enroll_as("a", t, "{}").reason, HasSubstr("\"csr\" is missing"));
  EXPECT_EQ(enroll_as("a", t, "").reason, "request is empty");
  EXPECT_THAT(enroll_as("a", t, "{\"csr\": \"x\", \"admin\": true}").reason,
              HasSubstr("unknown or mistyped key"));
  EXPECT_THAT(enroll_as("a", t, json_request("not a request")).reason, HasSubstr("bad certificate request"));
  EXPECT_THAT(enroll_as("a", t, std::string(5000, ' ')).reason, HasSubstr("larger than 4096"));
  // A bare PEM request is a request too; the name taken by another device is refused, token kept.
  devices_->add({"taken", {}, {}, std::nullopt, std::nullopt});
  EXPECT_THAT(enroll_as("taken", t, device_csr("taken")).reason, HasSubstr("exists"));
  EXPECT_TRUE(enroll_as("b", t, device_csr("b")).issued);
}

TEST_F(enrollment_test, a_token_of_a_template_no_longer_configured_is_refused) {
  const auto t = tokens_->create("gone", 1, unix_now() + 60).front();
  EXPECT_EQ(enroll_as("a", t, device_csr("a")).reason, "template \"gone\" is not configured");
}

} // namespace
} // namespace firehook::registry
