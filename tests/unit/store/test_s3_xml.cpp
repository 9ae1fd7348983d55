// Reading S3's XML answers: the seed bodies of the fuzz corpus (shapes from S3's API
// reference and Ceph RGW), entities, pagination, and malformed bodies named plainly.
#include "store/s3_xml.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

#include <catch2/catch.hpp>

using namespace ephemera;
using namespace ephemera::store;

namespace {

std::string seed(const std::string& name) {
  return util::read_file(std::string(EPHEMERA_SOURCE_ROOT) + "/tests/fuzz/corpus/fuzz_s3xml/" + name);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const util::StoreError& e) {
    CHECK(e.kind() == util::StoreErrorKind::permanent);
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("a ListObjectsV2 page: keys unescaped, sizes, times", "[store]") {
  auto page = s3xml::parse_list_objects(seed("list-objects.xml"));
  REQUIRE(page.objects.size() == 2);
  CHECK(page.objects[0].key == "ci/v1/acme~2Fwidget/build/cargo/e1/k/2026-11-25T150757Z-job1.json");
  CHECK(page.objects[0].size == 812);
  CHECK(page.objects[0].mtime == 1795619278); // 2026-11-25T15:07:58Z
  CHECK(page.objects[1].key == "ci/v1/a & b/x.tar.zst");
  CHECK(page.objects[1].size == 41947136);
  CHECK_FALSE(page.truncated);
  CHECK(page.next_token.empty());

  auto next = s3xml::parse_list_objects(seed("list-objects-truncated.xml"));
  CHECK(next.truncated);
  CHECK(next.next_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  CHECK(next.objects.at(0).size == 0);
}

TEST_CASE("a ListMultipartUploads page and a new upload's id", "[store]") {
  auto page = s3xml::parse_list_uploads(seed("list-uploads.xml"));
  REQUIRE(page.uploads.size() == 2);
  CHECK(page.uploads[0].key == "v1/my-divisor");
  CHECK(page.uploads[0].upload_id == "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw");
  CHECK(page.uploads[0].initiated == 1289422113);
  CHECK(page.truncated);
  CHECK(page.next_key_marker == "v1/my-movie.m2ts");
  CHECK(s3xml::parse_upload_id(seed("initiate.xml")) == "2~iCw_lDY8VoNlNQYGtY1e4WfZN6Z5fBw");
}

TEST_CASE("an error body, and a broken one that must not hide the failure", "[store]") {
  auto e = s3xml::parse_error(seed("error.xml"));
  CHECK(e.code == "NoSuchBucket");
  CHECK(e.message == "The specified bucket does not exist <here>");
  auto broken = s3xml::parse_error("<Error><Code>SlowDown");
  CHECK(broken.code.empty());
  CHECK(s3xml::parse_error("<html>502 Bad Gateway</html>").code.empty());
}

TEST_CASE("malformed S3 answers are refused, saying what was wrong", "[store]") {
  CHECK(error_of([] { s3xml::parse_list_objects("<ListBucketResult><Contents><Key>v1/x"); })
            .find("<Contents> is not closed") != std::string::npos);
  CHECK(error_of([] {
          s3xml::parse_list_objects("<ListBucketResult><Contents><Key>v1/x</Key><Size>12a</Size></Contents>"
                                    "</ListBucketResult>");
        }).find("the size of 'v1/x' is '12a'") != std::string::npos);
  CHECK(error_of([] {
          s3xml::parse_list_objects("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>");
        }).find("no <Key>") != std::string::npos);
  CHECK(error_of([] { s3xml::parse_list_objects("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"); })
            .find("without a continuation token") != std::string::npos);
  CHECK(error_of([] { s3xml::parse_list_uploads("<ListMultipartUploadsResult><Upload><Key>v1/x</Key></Upload>"); })
            .find("<UploadId>") != std::string::npos);
  CHECK(error_of([] { s3xml::parse_upload_id("<InitiateMultipartUploadResult/>"); })
            .find("without an UploadId") != std::string::npos);
  CHECK(error_of([] { s3xml::parse_list_objects("<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999999</Size></Contents>"); })
            .find("the size of 'a'") != std::string::npos);
  // Not S3 at all (a captive portal, a proxy's page): refused, not read as an empty store.
  CHECK(error_of([] {
          s3xml::parse_list_objects("<html><body>\nhello</body></html>");
        }).find("expected <ListBucketResult>, got '<html><body>\\nhello</body></html>'") !=
        std::string::npos);
  CHECK(error_of([] { s3xml::parse_list_uploads(""); }).find("expected <ListMultipartUploadsResult>") !=
        std::string::npos);
  CHECK(s3xml::parse_time("yesterday") == 0);
}

TEST_CASE("entities: named and numeric, resolved in one pass whatever the count", "[store]") {
  CHECK(
      s3xml::unescape("a&amp;lt;b &lt;&gt;&quot;&apos; &#13;&#10;&#x41;&#xe9; &bogus; &#0; & &") ==
      "a&lt;b <>\"' \r\nA\xc3\xa9 &bogus; &#0; & &");
  // One pass: 16 MiB of entities take a moment, not (as in-place replacement did) hours.
  std::string many;
  for (int i = 0; i < (4 << 20); ++i) {
    many += "&amp;";
  }
  CHECK(s3xml::unescape(many) == std::string(4 << 20, '&'));
}

TEST_CASE("S3 answers are bounded, and the server's words in errors are escaped", "[store]") {
  std::string huge =
      "<ListBucketResult>" + std::string(s3xml::k_max_document, ' ') + "</ListBucketResult>";
  CHECK(error_of([&] { s3xml::parse_list_objects(huge); }).find("more than the 16777216") !=
        std::string::npos);
  huge = "<ListMultipartUploadsResult>" + std::string(s3xml::k_max_document, ' ');
  CHECK(error_of([&] { s3xml::parse_list_uploads(huge); }).find("more than the 16777216") !=
        std::string::npos);
  auto e = error_of([] {
    s3xml::parse_list_objects(
        "<ListBucketResult><Contents><Key>v1/\x1b[2J</Key><Size>1\nephemera: x</Size>"
        "</Contents></ListBucketResult>");
  });
  CHECK(e.find('\x1b') == std::string::npos);
  CHECK(e.find('\n') == std::string::npos);
  CHECK(e.find("the size of 'v1/\\x1b[2J' is '1\\nephemera: x'") != std::string::npos);
}
