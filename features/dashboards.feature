@dashboards
Feature: Provisioned dashboards show data
  Every panel of the dashboards in deploy/ queries the stack with a query the stack accepts and
  that returns data once a small fleet and the collector's own metrics (job "collector") flow.

  Background:
    Given the central stack
    And a small fleet feeding the stack through a gateway collector, whose own metrics are scraped as job "collector"

  Scenario: Every panel query is valid and returns data
    Then within 60 s every panel query of the provisioned dashboards is accepted and returns data, but for these trouble-only panels, which may be empty while nothing is wrong:
      | dashboard                  | panel                                 |
      | load-run.json              | Errors: non-2xx requests/s by writer  |
      | pipeline-health.json       | Retries/s by writer                   |
      | pipeline-health.json       | Scrape failures/s by reason           |
      | retail-fleet-overview.json | Printers in fault                     |
      | retail-fleet-overview.json | Devices over 2% packet loss or down   |

  @grafana
  Scenario: The dashboards are provisioned in Grafana
    Then Grafana lists every dashboard of deploy/ in /api/search
