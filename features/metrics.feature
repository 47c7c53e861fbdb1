Feature: Device metrics reach Mimir
  A node agent scrapes the node's exporter and labels every series with the node's metadata;
  relabel rules shape what is kept; a target that does not answer reports up 0.

  Background:
    Given the central stack

  Scenario: A device exporter's metrics reach Mimir with the node's labels
    Given a "router" device in region "us-east" of brand "brand1" in "healthy" mode
    And a node agent for the device
    Then within 20 s Mimir has "net_interface_up" for the node with its region, location, node_type, device, brand and problem_mode
    And within 20 s Mimir has "up" = 1 for the node with job "router"

  Scenario: Relabel rules drop and add series
    Given a "pos" device in region "eu-west" of brand "brand3" in "healthy" mode
    And a collector scraping the device every second with the relabel rules
      | action  | source_labels | regex            | target_label   | replacement |
      | drop    | __name__      | pos_scanner_.*   |                |             |
      | replace | __name__      | pos_printer_(.*) | printer_metric | $1          |
    Then within 20 s Mimir has "pos_printer_status" for the device with label printer_metric = "status"
    And Mimir has no "pos_scanner_errors_total" series for the device

  Scenario: A dead target reports up 0
    Given a collector scraping a target where nothing listens
    Then within 20 s Mimir has "up" = 0 for the dead target
