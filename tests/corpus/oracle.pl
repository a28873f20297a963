#!/usr/bin/perl
# The oracle for the Received corpus: SpamAssassin's own Received parser
# (Mail::SpamAssassin::Message::Metadata::Received, from Debian's spamassassin package), run on
# each Received header of each message, in the library, without spamd or any configuration.
#
#   tests/corpus/oracle.pl tests/data/corpus/messages > tests/data/corpus/oracle.json
#
# Output: {"spamassassin": VERSION, "messages": {"0001.eml": [HOP, ...]}}, one HOP per Received
# header, top first: {"status": "parsed", "ip", "rdns", "helo", "by"} as SpamAssassin gives
# them, {"status": "skipped"} for a header it recognises as naming no relay (returns 0), and
# {"status": "unparsed"} for one it cannot read (returns undef). Header values are unfolded as
# SpamAssassin does (newline + white space becomes one space) and passed as bytes.
use strict;
use warnings;
use JSON::PP;
use Mail::SpamAssassin;
use Mail::SpamAssassin::Message::Metadata::Received;

my $dir = shift or die "usage: $0 MESSAGE_DIR\n";
opendir(my $dh, $dir) or die "$dir: $!\n";
my @files = sort grep { /\.eml$/ } readdir($dh);
closedir($dh);

# parse_received_line only uses its object for the qmail-scanner hack's state.
my $meta = bless {}, 'Mail::SpamAssassin::Message::Metadata';

sub received_values {
  my ($path) = @_;
  open(my $fh, '<:raw', $path) or die "$path: $!\n";
  local $/;
  my $raw = <$fh>;
  close($fh);
  $raw =~ s/\r\n/\n/g;
  my ($header) = split(/\n\n/, $raw, 2);
  my @values;
  my $current;
  for my $line (split(/\n/, $header)) {
    if ($line =~ /^[ \t]/ && defined $current) {
      $current .= "\n$line";
      next;
    }
    push @values, $current if defined $current;
    $current = undef;
    $current = $1 if $line =~ /^Received:(.*)$/i;
  }
  push @values, $current if defined $current;
  return @values;
}

my %out;
for my $file (@files) {
  my @hops;
  for my $value (received_values("$dir/$file")) {
    (my $line = $value) =~ s/\n[ \t]+/ /gs;
    my $relay = $meta->parse_received_line($line);
    if (!defined $relay) {
      push @hops, {status => 'unparsed'};
    } elsif (!ref $relay) {
      push @hops, {status => 'skipped'};
    } else {
      push @hops, {status => 'parsed', map { $_ => $relay->{$_} } qw(ip rdns helo by)};
    }
  }
  $out{$file} = \@hops;
}
print JSON::PP->new->canonical->ascii->indent->indent_length(1)
    ->encode({spamassassin => Mail::SpamAssassin::Version(), messages => \%out});
