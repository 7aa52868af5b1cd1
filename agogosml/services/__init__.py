"""The three pipeline services: input_reader -> app -> output_writer."""
