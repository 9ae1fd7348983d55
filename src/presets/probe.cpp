#include "presets/probe.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ephemera::presets {

namespace fs = std::filesystem;

namespace {

// Owned by root or this user and writable by neither group nor others: nobody else can
// have put what it holds there.
bool safe_owner(const struct stat& st) {
  return (st.st_uid == 0 || st.st_uid == ::geteuid()) && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

bool below(const fs::path& p, const fs::path& dir) {
  auto rel = p.lexically_normal().lexically_relative(dir.lexically_normal());
  return !rel.empty() && *rel.begin() != "..";
}

} // namespace

std::vector<fs::path> trusted_path(const std::string& path_env,
                                   const std::vector<fs::path>& job_dirs) {
  std::vector<fs::path> out;
  size_t from = 0;
  while (from <= path_env.size()) {
    size_t to = path_env.find(':', from);
    if (to == std::string::npos) {
      to = path_env.size();
    }
    fs::path dir = path_env.substr(from, to - from);
    from = to + 1;
    if (dir.empty() || dir.is_relative()) {
      continue;
    }
    bool job = false;
    for (const auto& j : job_dirs) {
      job = job || (!j.empty() && below(dir, j));
    }
    struct stat st {};
    if (job || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || !safe_owner(st)) {
      continue;
    }
    out.push_back(dir.lexically_normal());
  }
  return out;
}

std::optional<fs::path> find_program(const std::string& program,
                                     const std::vector<fs::path>& dirs) {
  if (program.empty() || program.find('/') != std::string::npos) {
    return std::nullopt;
  }
  for (const auto& d : dirs) {
    fs::path p = d / program;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0 &&
        safe_owner(st)) {
      return p;
    }
  }
  return std::nullopt;
}

ProbeResult run_probe(const Probe& probe, const std::vector<fs::path>& job_dirs,
                      int timeout_seconds) {
  ProbeResult r;
  const char* path_env = std::getenv("PATH");
  r.program = find_program(std::string(probe.program),
                           trusted_path(path_env != nullptr ? path_env : "", job_dirs));
  if (!r.program) {
    r.problem =
        fmt::format("no '{}' on the agent's PATH (outside the job's directories)", probe.program);
    return r;
  }
  std::string file = r.program->string();
  std::vector<std::string> args{std::string(probe.program)};
  for (auto a : probe.args) {
    args.emplace_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::string env_path = "PATH=/usr/local/bin:/usr/bin:/bin", env_lc = "LC_ALL=C";
  std::array<char*, 3> envp{env_path.data(), env_lc.data(), nullptr};
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    r.problem = fmt::format("pipe: {}", std::strerror(errno));
    return r;
  }
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (null_fd < 0 || ::chdir("/") != 0 || ::dup2(null_fd, 0) < 0 || ::dup2(pipe_fds[1], 1) < 0 ||
        ::dup2(null_fd, 2) < 0) {
      ::_exit(127);
    }
    ::execve(file.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  if (null_fd >= 0) {
    ::close(null_fd);
  }
  if (pid < 0) {
    ::close(pipe_fds[0]);
    r.problem = fmt::format("fork: {}", std::strerror(errno));
    return r;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  bool timed_out = false, too_long = false;
  std::array<char, 4096> buf{};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      timed_out = n == 0;
      break;
    }
    ssize_t got = ::read(pipe_fds[0], buf.data(), buf.size());
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    if (r.output.size() + static_cast<size_t>(got) > k_max_output) {
      too_long = true;
      break;
    }
    r.output.append(buf.data(), static_cast<size_t>(got));
  }
  ::close(pipe_fds[0]);
  if (timed_out || too_long) {
    ::kill(pid, SIGKILL);
  }
  // It may close its stdout and go on: wait for it only until the deadline.
  int status = 0;
  for (;;) {
    pid_t done = ::waitpid(pid, &status, timed_out || too_long ? 0 : WNOHANG);
    if (done < 0 && errno == EINTR) {
      continue;
    }
    if (done != 0) {
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      continue;
    }
    ::usleep(10'000);
  }
  if (timed_out) {
    r.problem = fmt::format("'{}' did not answer within {} s: killed", file, timeout_seconds);
  } else if (too_long) {
    r.problem = fmt::format("'{}' wrote more than {} bytes: killed", file, k_max_output);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r.problem = fmt::format("'{}' failed (status {})", file, status);
  }
  if (!r.problem.empty()) {
    r.output.clear();
  }
  return r;
}

} // namespace ephemera::presets
