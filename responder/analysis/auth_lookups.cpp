#include "responder/analysis/auth_lookups.hpp"

namespace ipconfirm::responder {

namespace {

// A check that keeps asking after its rounds and the deadline have answered everything it
// asked is a bug; after this many runs it is given up (its verdict made temperror).
constexpr int kMaxRuns = kMaxAuthRounds + 4;

const char* const kTooManyRounds = "not asked: too many rounds of lookups";
const char* const kTimeout = "timeout";
const char* const kAfterDeadline = "not asked: the report's deadline had passed";
const char* const kCancelled = "not asked: the transaction ended";

}  // namespace

AuthLookups::AuthLookups(asio::any_io_executor ex, std::shared_ptr<DnsResolver> resolver,
                         Options options)
    : ex_(ex),
      resolver_(std::move(resolver)),
      options_(std::move(options)),
      signal_(ex),
      deadline_(ex) {
  signal_.expires_at(Clock::time_point::max());
}

AuthLookups::~AuthLookups() = default;

void AuthLookups::spawn_driver(Run run, DnsResolver::Caching caching) {
  ++running_;
  auto self = shared_from_this();
  asio::co_spawn(
      ex_,
      [self, run = std::move(run), caching]() -> asio::awaitable<void> {
        co_await self->drive(run, caching);
      },
      asio::detached);
}

asio::awaitable<void> AuthLookups::drive(Run run, DnsResolver::Caching caching) {
  auto self = shared_from_this();
  boost::system::error_code ec;
  for (int round = 0;; ++round) {
    const DnsNeeds* needs = run();
    if (!needs) break;
    if (round >= kMaxRuns || needs->empty()) break;  // given up below
    const auto now = Clock::now();
    if (cancelled_ || expired_ || round >= kMaxAuthRounds) {
      dns_.time_out(*needs,
                    cancelled_ ? kCancelled
                    : expired_ ? kAfterDeadline
                               : kTooManyRounds,
                    now);
      continue;
    }
    for (DnsQuestion& q : dns_.take_new(*needs, now)) {
      asio::co_spawn(
          ex_,
          [self, q = std::move(q), caching]() -> asio::awaitable<void> {
            co_await self->ask(q, caching);
          },
          asio::detached);
    }
    while (!dns_.has_all(*needs) && !expired_ && !cancelled_)
      co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  --running_;
  signal_.cancel();
}

asio::awaitable<void> AuthLookups::ask(DnsQuestion question, DnsResolver::Caching caching) {
  auto self = shared_from_this();
  DnsResult result = co_await resolver_->query(question.name, question.type, caching);
  if (!sealed_) dns_.answer(question, result, Clock::now());
  signal_.cancel();
}

void AuthLookups::start_spf(const IpAddress& ip, std::string mail_from, std::string helo,
                            std::int64_t now) {
  if (spf_started_) return;
  spf_started_ = true;
  spf_input_.ip = ip;
  spf_input_.mail_from = std::move(mail_from);
  spf_input_.helo = std::move(helo);
  spf_input_.receiver = options_.receiver;
  spf_input_.now = now;
  // The first run asks nothing of DNS but knows the domains (DMARC's prefetch needs the MAIL
  // FROM one).
  spf_run_ = check_spf(spf_input_, SpfIdentity::mail_from, dns_.answers());
  spf_helo_run_ = check_spf(spf_input_, SpfIdentity::helo, dns_.answers());
  spawn_driver(
      [this]() -> const DnsNeeds* {
        spf_run_ = check_spf(spf_input_, SpfIdentity::mail_from, dns_.answers());
        return spf_run_.complete ? nullptr : &spf_run_.needs;
      },
      DnsResolver::Caching::store);
  // The client chose its HELO name: what its zone answers is not kept for anyone else.
  spawn_driver(
      [this]() -> const DnsNeeds* {
        spf_helo_run_ = check_spf(spf_input_, SpfIdentity::helo, dns_.answers());
        return spf_helo_run_.complete ? nullptr : &spf_helo_run_.needs;
      },
      DnsResolver::Caching::no_store);
}

void AuthLookups::start_header(std::string_view header, std::int64_t now) {
  if (have_header_) return;
  have_header_ = true;
  check_ = std::make_unique<DkimCheck>(header, options_.dkim);
  from_fields_ = from_field_values(header);
  // The signatures' domains are known before any key is (no key: no verification is tried).
  const DkimResults first = check_->verify(DnsAnswers{}, now);
  for (const auto& s : first.signatures)
    if (s.checked && !s.domain.empty()) dkim_domains_.push_back(s.domain);
  if (check_->signature_count() > 0 || check_->has_arc()) {
    // This driver only finds the keys (an answer may come after the final dot, when the body
    // hash is there): the signatures are verified once, by finish(), off the event loop.
    spawn_driver(
        [this]() -> const DnsNeeds* {
          key_needs_ = check_->key_needs(dns_.answers());
          return key_needs_.empty() ? nullptr : &key_needs_;
        },
        DnsResolver::Caching::store);
  }
  dmarc_in_ = dmarc_prefetch_input(from_fields_, spf_run_.domain, dkim_domains_);
  spawn_driver(
      [this]() -> const DnsNeeds* {
        dmarc_run_ = check_dmarc(dmarc_in_, dns_.answers());
        return dmarc_run_.complete ? nullptr : &dmarc_run_.needs;
      },
      DnsResolver::Caching::store);
}

void AuthLookups::body(std::string_view piece) {
  if (check_) check_->body().feed(piece);
}

void AuthLookups::cancel() {
  cancelled_ = true;
  signal_.cancel();
}

void AuthLookups::expire() {
  if (expired_) return;
  expired_ = true;
  // While sealed no question is in flight (every driver has finished), and nothing may write.
  if (!sealed_) dns_.time_out_all(kTimeout, Clock::now());
  signal_.cancel();
}

asio::awaitable<void> AuthLookups::wait_for_drivers() {
  boost::system::error_code ec;
  while (running_ > 0) co_await signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void AuthLookups::verify_signatures(std::int64_t now) {
  verdicts_.dkim = check_->verify(dns_.answers(), now);
  verdicts_.arc = check_->verify_arc(dns_.answers());
}

asio::awaitable<void> AuthLookups::finish(Clock::time_point deadline, std::int64_t now,
                                          std::optional<asio::any_io_executor> heavy) {
  auto self = shared_from_this();
  if (check_) check_->end_body();
  if (Clock::now() >= deadline) {
    expire();
  } else {
    deadline_.expires_at(deadline);
    deadline_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->expire();
    });
  }
  co_await wait_for_drivers();

  if (check_) {
    if (heavy) {
      sealed_ = true;
      co_await asio::co_spawn(
          *heavy,
          [this, now]() -> asio::awaitable<void> {
            verify_signatures(now);
            co_return;
          },
          asio::use_awaitable);
      sealed_ = false;
    } else {
      verify_signatures(now);
    }
    // Every key was asked before: a check that still needs one is driven once more (it does
    // not happen unless the checks change what they ask once the body is there).
    if (!verdicts_.dkim->complete || !verdicts_.arc->complete) {
      spawn_driver(
          [this, now]() -> const DnsNeeds* {
            verify_signatures(now);
            key_needs_ = DnsNeeds{};
            for (const auto& q : verdicts_.dkim->needs.questions()) key_needs_.add(q.name, q.type);
            for (const auto& q : verdicts_.arc->needs.questions()) key_needs_.add(q.name, q.type);
            return verdicts_.dkim->complete && verdicts_.arc->complete ? nullptr : &key_needs_;
          },
          DnsResolver::Caching::store);
      co_await wait_for_drivers();
    }
  }

  if (spf_started_) {
    verdicts_.spf = spf_run_;
    verdicts_.spf_helo = spf_helo_run_;
  }
  if (have_header_) {
    dmarc_in_ = dmarc_input(from_fields_, spf_started_ ? &spf_run_ : nullptr,
                            verdicts_.dkim ? &*verdicts_.dkim : nullptr);
    spawn_driver(
        [this]() -> const DnsNeeds* {
          dmarc_run_ = check_dmarc(dmarc_in_, dns_.answers());
          return dmarc_run_.complete ? nullptr : &dmarc_run_.needs;
        },
        DnsResolver::Caching::store);
    co_await wait_for_drivers();
    verdicts_.dmarc = dmarc_run_;
  }
  deadline_.cancel();
  // A driver given up after kMaxRuns left an incomplete verdict: it is a temporary failure of
  // ours, never a verdict.
  auto give_up = [](auto& v) {
    if (v && !v->complete) {
      v->complete = true;
      v->needs = DnsNeeds{};
    }
  };
  if (verdicts_.spf && !verdicts_.spf->complete) {
    verdicts_.spf->result = SpfResult::temperror;
    verdicts_.spf->problem = "the evaluation did not finish";
  }
  if (verdicts_.spf_helo && !verdicts_.spf_helo->complete) {
    verdicts_.spf_helo->result = SpfResult::temperror;
    verdicts_.spf_helo->problem = "the evaluation did not finish";
  }
  if (verdicts_.dmarc && !verdicts_.dmarc->complete) {
    verdicts_.dmarc->result = DmarcResult::temperror;
    verdicts_.dmarc->problem = "the evaluation did not finish";
  }
  if (verdicts_.arc && !verdicts_.arc->complete) {
    verdicts_.arc->result = "temperror";
    verdicts_.arc->reason = "the key lookups did not finish";
  }
  give_up(verdicts_.spf);
  give_up(verdicts_.spf_helo);
  give_up(verdicts_.dmarc);
  give_up(verdicts_.dkim);
  give_up(verdicts_.arc);
}

}  // namespace ipconfirm::responder
